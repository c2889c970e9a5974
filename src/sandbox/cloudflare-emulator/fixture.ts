import { randomBytes } from 'node:crypto';
import type { EmulatedRecord, EmulatorState } from './emulator-state.ts';

/**
 * The sandbox's seed: the production account's shape (account, tunnel, 153.se with the four
 * CNAMEs that predate Tunnel Manager) plus two more zones, one of them on a paid plan so tags are allowed,
 * and records that belong to somebody else (Tunnel Manager must neither overwrite nor delete them).
 */
export const FIXTURE_ACCOUNT_ID = '2d3af2bad092943b12b5e9fcde17b7a3';
export const FIXTURE_TUNNEL_ID = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b';
export const FIXTURE_TUNNEL_TARGET = `${FIXTURE_TUNNEL_ID}.cfargotunnel.com`;

export const FIXTURE_ZONES = {
  main: { id: 'f0cd4fffeebf70a32d4dde6c56806ce7', name: '153.se' },
  paid: { id: '6a1f0e2b9c3d4e5f8a7b6c5d4e3f2a1b', name: 'horizon-lab.dev' },
  third: { id: '0b9e8d7c6f5a4b3c2d1e0f9a8b7c6d5e', name: 'odin-studio.net' },
} as const;

/** The hostnames already routed through the tunnel before Tunnel Manager existed (no ownership marker). */
export const FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES = ['chat.153.se', 'code.153.se', 'consilio.153.se', 'hejsan.153.se'] as const;

const SEEDED_AT = '2024-03-01T09:00:00.000000Z';

function record(id: string, zoneId: string, fields: Pick<EmulatedRecord, 'name' | 'type' | 'content'> & Partial<EmulatedRecord>): EmulatedRecord {
  return {
    id,
    zoneId,
    proxied: false,
    ttl: 1,
    comment: null,
    tags: [],
    createdOn: SEEDED_AT,
    modifiedOn: SEEDED_AT,
    ...fields,
  };
}

export function createFixtureState(): EmulatorState {
  const main = FIXTURE_ZONES.main.id;
  const paid = FIXTURE_ZONES.paid.id;
  const third = FIXTURE_ZONES.third.id;
  const tunnelCname = (id: string, name: string) =>
    record(id, main, { name, type: 'CNAME', content: FIXTURE_TUNNEL_TARGET, proxied: true });
  return {
    accounts: [{ id: FIXTURE_ACCOUNT_ID, name: '153 Consulting' }],
    zones: [
      { ...FIXTURE_ZONES.main, status: 'active', plan: 'free', accountId: FIXTURE_ACCOUNT_ID, createdOn: SEEDED_AT },
      { ...FIXTURE_ZONES.paid, status: 'active', plan: 'pro', accountId: FIXTURE_ACCOUNT_ID, createdOn: SEEDED_AT },
      { ...FIXTURE_ZONES.third, status: 'active', plan: 'free', accountId: FIXTURE_ACCOUNT_ID, createdOn: SEEDED_AT },
    ],
    records: [
      tunnelCname('c1a0000000000000000000000000c4a7', 'chat.153.se'),
      tunnelCname('c1a0000000000000000000000000c0de', 'code.153.se'),
      tunnelCname('c1a0000000000000000000000000c0c1', 'consilio.153.se'),
      tunnelCname('c1a0000000000000000000000000be75', 'hejsan.153.se'),
      // Somebody else's: a hand-made website record and mail settings.
      record('f0e1000000000000000000000000a001', main, { name: 'www.153.se', type: 'A', content: '192.0.2.10', proxied: true, comment: 'website, managed by hand' }),
      record('f0e1000000000000000000000000a002', main, { name: '153.se', type: 'TXT', content: '"v=spf1 -all"' }),
      record('f0e1000000000000000000000000b001', paid, { name: 'horizon-lab.dev', type: 'A', content: '192.0.2.20', proxied: true }),
      record('f0e1000000000000000000000000b002', paid, { name: 'status.horizon-lab.dev', type: 'CNAME', content: 'status.example.net', proxied: false, tags: ['team:ops'] }),
      record('f0e1000000000000000000000000c001', third, { name: 'odin-studio.net', type: 'AAAA', content: '2001:db8::20', proxied: true }),
    ],
    tunnels: [
      {
        id: FIXTURE_TUNNEL_ID,
        accountId: FIXTURE_ACCOUNT_ID,
        name: 'vm-153',
        // Created with `cloudflared tunnel create` and run from a config.yml, as on the VM: locally managed until a
        // configuration is PUT through the API.
        source: 'local',
        version: 0,
        config: null,
        createdAt: SEEDED_AT,
        secret: randomBytes(32).toString('base64'),
      },
    ],
  };
}
