import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ZoneDirectory } from '../../../src/cloudflare/zones.ts';
import { createFixtureState, FIXTURE_TUNNEL_TARGET, FIXTURE_ZONES } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import type { EmulatorState } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { DomainsRepository } from '../../../src/store/domains-repository.ts';
import { startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

/** The fixture plus 10 more zones (13 in all) and 12 more tunnel CNAMEs on 153.se (16 in all). */
function biggerAccount(): EmulatorState {
  const state = createFixtureState();
  const account = state.accounts[0]!.id;
  for (let i = 0; i < 10; i += 1) {
    state.zones.push({ id: `${i}`.padStart(32, 'a'), name: `extra-${String(i).padStart(2, '0')}.se`, status: 'active', plan: i % 2 ? 'pro' : 'free', accountId: account, createdOn: '2024-01-01T00:00:00.000000Z' });
  }
  // A zone of another account must not be listed.
  state.accounts.push({ id: 'ffffffffffffffffffffffffffffffff', name: 'someone else' });
  state.zones.push({ id: 'f'.repeat(32), name: 'not-ours.se', status: 'active', plan: 'free', accountId: 'ffffffffffffffffffffffffffffffff', createdOn: '2024-01-01T00:00:00.000000Z' });
  for (let i = 0; i < 12; i += 1) {
    state.records.push({
      id: `${i}`.padStart(32, 'b'),
      zoneId: FIXTURE_ZONES.main.id,
      name: `svc-${String(i).padStart(2, '0')}.153.se`,
      type: 'CNAME',
      content: FIXTURE_TUNNEL_TARGET,
      proxied: true,
      ttl: 1,
      comment: null,
      tags: [],
      createdOn: '2024-01-01T00:00:00.000000Z',
      modifiedOn: '2024-01-01T00:00:00.000000Z',
    });
  }
  return state;
}

let sandbox: CloudflareSandbox;
let dir: string;
let db: Database;
beforeEach(async () => {
  sandbox = await startCloudflareSandbox({ seed: biggerAccount });
  dir = mkdtempSync(join(tmpdir(), 'tm-cf-pages-'));
  db = openDatabase(join(dir, 'tm.db')).db;
});
afterEach(async () => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
  await sandbox.close();
});

describe('pagination through the real SDK', () => {
  it('lists every zone of the account over three pages of 5, and caches them in domains', async () => {
    const provider = sandbox.provider({ pageSize: { zones: 5 } });
    const directory = new ZoneDirectory({ listZones: () => provider.listZones(), domains: new DomainsRepository(db), defaultZone: '153.se', now: () => 1234 });
    const report = await directory.refresh();

    expect(report.zones).toHaveLength(13);
    expect(report.zones.map((z) => z.name)).not.toContain('not-ours.se');
    const pages = sandbox.emulator.requests().filter((r) => r.route === 'GET /zones');
    expect(pages).toHaveLength(3); // stops at total_pages, no extra empty page
    expect(new DomainsRepository(db).findByName('153.se')).toEqual({
      zoneId: FIXTURE_ZONES.main.id,
      name: '153.se',
      status: 'active',
      plan: 'free',
      accountId: sandbox.emulator.accountId,
      refreshedAt: 1234,
    });
    expect(directory.defaultZone().zoneId).toBe(FIXTURE_ZONES.main.id);
    expect(directory.resolveZone('app.extra-03.se').name).toBe('extra-03.se');
  });

  it('finds every tunnel CNAME of a zone over four pages of 5', async () => {
    const provider = sandbox.provider({ pageSize: { records: 5 } });
    const records = await provider.findTunnelCnames(FIXTURE_ZONES.main.id);
    expect(records).toHaveLength(16);
    expect(new Set(records.map((r) => r.id)).size).toBe(16);
    expect(sandbox.emulator.requests().filter((r) => r.route === 'GET /zones/:zone/dns_records')).toHaveLength(4);
  });

  it('a refresh removes zones that left the account', async () => {
    const provider = sandbox.provider();
    const domains = new DomainsRepository(db);
    const directory = new ZoneDirectory({ listZones: () => provider.listZones(), domains, defaultZone: '153.se' });
    await directory.refresh();
    const zones = sandbox.emulator.state().zones;
    const next = biggerAccount();
    next.zones = next.zones.filter((z) => z.name !== 'extra-00.se');
    await sandbox.close();
    sandbox = await startCloudflareSandbox({ seed: () => next });
    const provider2 = sandbox.provider();
    const report = await new ZoneDirectory({ listZones: () => provider2.listZones(), domains, defaultZone: '153.se' }).refresh();
    expect(zones.some((z) => z.name === 'extra-00.se')).toBe(true);
    expect(report.removed).toEqual(['extra-00.se']);
    expect(domains.findByName('extra-00.se')).toBeUndefined();
  });
});
