import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCloudflareClient } from '../../../src/cloudflare/client.ts';
import { createDnsProvider, type DnsProvider } from '../../../src/cloudflare/dns-provider.ts';
import { createOwnershipRegistry, type OwnershipRegistry } from '../../../src/cloudflare/ownership-registry.ts';
import { RateLimiter } from '../../../src/cloudflare/rate-limiter.ts';
import { FIXTURE_TUNNEL_TARGET, FIXTURE_ZONES } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { failureOf, startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

/**
 * The registry (src/cloudflare/ownership-registry.ts) over a real provider (the SDK against the emulator on
 * 127.0.0.1): the marker it writes, the records it refuses, the races it re-checks, the retries it runs whole.
 */

const MAIN = FIXTURE_ZONES.main.id;
const PAID = FIXTURE_ZONES.paid.id;

let sandbox: CloudflareSandbox;
/** The plain provider the registry wraps; tests also use it as "someone else" writing to the zone. */
let dns: DnsProvider;
beforeEach(async () => {
  sandbox = await startCloudflareSandbox();
  dns = createDnsProvider(createCloudflareClient({ apiBaseUrl: sandbox.emulator.apiBaseUrl, apiToken: sandbox.emulator.token, rateLimiter: new RateLimiter() }));
});

function registry(): OwnershipRegistry {
  return createOwnershipRegistry(dns, { tunnelTarget: FIXTURE_TUNNEL_TARGET, retry: { backoffMs: [10, 20, 40] } });
}
afterEach(async () => {
  await sandbox.close();
});

const recordsNamed = (name: string) => sandbox.emulator.state().records.filter((r) => r.name === name);

describe('OwnershipRegistry.ensureCname', () => {
  it('creates a proxied CNAME to the tunnel, TTL auto, with the ownership marker and no tags on Free', async () => {
    const { record, created } = await registry().ensureCname({ zoneId: MAIN, hostname: 'App.153.se', owner: 'consilio', zonePlan: 'free' });
    expect(created).toBe(true);
    expect(record).toMatchObject({ name: 'app.153.se', type: 'CNAME', content: FIXTURE_TUNNEL_TARGET, proxied: true, ttl: 1 });
    expect(recordsNamed('app.153.se')).toEqual([
      expect.objectContaining({ comment: 'tunnel-manager:owner=consilio', tags: [], proxied: true, content: FIXTURE_TUNNEL_TARGET }),
    ]);
  });

  it('adds the owner tag on a paid plan', async () => {
    await registry().ensureCname({ zoneId: PAID, hostname: 'app.horizon-lab.dev', owner: 'openhorizon', zonePlan: 'pro' });
    expect(recordsNamed('app.horizon-lab.dev')[0]?.tags).toEqual(['tunnel-manager-owner:openhorizon']);
  });

  it('reuses its own record for the same owner: a repeated request creates nothing', async () => {
    const provider = registry();
    const first = await provider.ensureCname({ zoneId: MAIN, hostname: 'app.153.se', owner: 'consilio' });
    const second = await provider.ensureCname({ zoneId: MAIN, hostname: 'app.153.se', owner: 'consilio' });
    expect(second).toEqual({ record: first.record, created: false });
    expect(recordsNamed('app.153.se')).toHaveLength(1);
    expect(sandbox.emulator.requests().filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('a POST whose connection dropped after Cloudflare stored the record is retried without a duplicate', async () => {
    sandbox.emulator.setFaults([{ route: 'POST /zones/:zone/dns_records', drop: 'after', times: 1 }]);
    const { record, created } = await registry().ensureCname({ zoneId: MAIN, hostname: 'flaky.153.se', owner: 'consilio' });
    expect(created).toBe(true); // this call made it, so a rollback may delete it
    expect(recordsNamed('flaky.153.se')).toEqual([expect.objectContaining({ id: record.id })]);
    const log = sandbox.emulator.requests().map((r) => `${r.method} ${r.status}`);
    expect(log).toEqual(['GET 200', 'POST dropped', 'GET 200']);
  });

  it('a POST dropped before it took effect is simply sent again', async () => {
    sandbox.emulator.setFaults([{ route: 'POST /zones/:zone/dns_records', drop: 'before', times: 1 }]);
    await registry().ensureCname({ zoneId: MAIN, hostname: 'again.153.se', owner: 'consilio' });
    expect(recordsNamed('again.153.se')).toHaveLength(1);
    expect(sandbox.emulator.requests().filter((r) => r.method === 'POST').map((r) => r.status)).toEqual(['dropped', 200]);
  });

  it('refuses a foreign A record with RECORD_EXISTS naming it, and leaves it untouched', async () => {
    const before = recordsNamed('www.153.se');
    const error = await failureOf(registry().ensureCname({ zoneId: MAIN, hostname: 'www.153.se', owner: 'consilio' }));
    expect(error.code).toBe('RECORD_EXISTS');
    expect(error.message).toContain('A www.153.se → 192.0.2.10');
    expect(error.message).toContain('not created by Tunnel Manager');
    expect(error.details).toMatchObject({ reason: 'foreign', existing: [{ type: 'A', content: '192.0.2.10' }] });
    expect(error.fix).toMatch(/another hostname/);
    expect(recordsNamed('www.153.se')).toEqual(before);
    expect(sandbox.emulator.requests().every((r) => r.method === 'GET')).toBe(true);
  });

  it('refuses an unmarked CNAME even when it points at our tunnel (it predates us)', async () => {
    const error = await failureOf(registry().ensureCname({ zoneId: MAIN, hostname: 'chat.153.se', owner: 'consilio' }));
    expect(error.code).toBe('RECORD_EXISTS');
    expect(error.message).toContain('no Tunnel Manager marker');
  });

  it("refuses another project's record and names the owner", async () => {
    const provider = registry();
    await provider.ensureCname({ zoneId: MAIN, hostname: 'shared.153.se', owner: 'odin' });
    const error = await failureOf(provider.ensureCname({ zoneId: MAIN, hostname: 'shared.153.se', owner: 'consilio' }));
    expect(error.code).toBe('RECORD_EXISTS');
    expect(error.details.owner).toBe('odin');
    expect(error.message).toContain('belongs to project odin');
  });

  it('an unknown zone is ZONE_NOT_FOUND', async () => {
    const error = await failureOf(registry().ensureCname({ zoneId: '0'.repeat(32), hostname: 'x.nowhere.se', owner: 'consilio' }));
    expect(error.code).toBe('ZONE_NOT_FOUND');
  });
});

describe('OwnershipRegistry.deleteOwnedCname', () => {
  it('deletes our record for its owner, and then reports nothing left to delete', async () => {
    const provider = registry();
    await provider.ensureCname({ zoneId: MAIN, hostname: 'gone.153.se', owner: 'consilio' });
    expect(await provider.deleteOwnedCname({ zoneId: MAIN, hostname: 'gone.153.se', owner: 'consilio' })).toMatchObject({ deleted: true });
    expect(recordsNamed('gone.153.se')).toEqual([]);
    expect(await provider.deleteOwnedCname({ zoneId: MAIN, hostname: 'gone.153.se', owner: 'consilio' })).toEqual({ deleted: false });
  });

  it('never deletes a foreign record: RECORD_NOT_OWNED naming what exists', async () => {
    const before = sandbox.emulator.state();
    const provider = registry();
    for (const hostname of ['www.153.se', 'chat.153.se']) {
      const error = await failureOf(provider.deleteOwnedCname({ zoneId: MAIN, hostname, owner: 'meta-supervisor' }));
      expect(error.code).toBe('RECORD_NOT_OWNED');
      expect(error.message).toContain(hostname);
      expect(error.message).toContain('Nothing was deleted');
      expect(error.fix).toMatch(/Cloudflare dashboard/);
    }
    expect(sandbox.emulator.state()).toEqual(before);
    expect(sandbox.emulator.requests().some((r) => r.method === 'DELETE')).toBe(false);
  });

  it("never deletes another project's record", async () => {
    const provider = registry();
    await provider.ensureCname({ zoneId: MAIN, hostname: 'mine.153.se', owner: 'odin' });
    const error = await failureOf(provider.deleteOwnedCname({ zoneId: MAIN, hostname: 'mine.153.se', owner: 'consilio' }));
    expect(error).toMatchObject({ code: 'RECORD_NOT_OWNED', details: { owner: 'odin' } });
    expect(recordsNamed('mine.153.se')).toHaveLength(1);
  });

  it('deletes an adopted (unmarked) record only when given the id the ledger adopted', async () => {
    const provider = registry();
    const chat = recordsNamed('chat.153.se')[0]!;
    await failureOf(provider.deleteOwnedCname({ zoneId: MAIN, hostname: 'chat.153.se', owner: 'meta-supervisor', adoptedRecordId: 'f'.repeat(32) }));
    expect(await provider.deleteOwnedCname({ zoneId: MAIN, hostname: 'chat.153.se', owner: 'meta-supervisor', adoptedRecordId: chat.id })).toMatchObject({ deleted: true });
    expect(recordsNamed('chat.153.se')).toEqual([]);
  });

  it('a DELETE whose answer was lost still counts as deleted', async () => {
    const provider = registry();
    await provider.ensureCname({ zoneId: MAIN, hostname: 'lost.153.se', owner: 'consilio' });
    sandbox.emulator.setFaults([{ route: 'DELETE /zones/:zone/dns_records/:record', drop: 'after', times: 1 }]);
    expect(await provider.deleteOwnedCname({ zoneId: MAIN, hostname: 'lost.153.se', owner: 'consilio' })).toMatchObject({ deleted: true, record: { name: 'lost.153.se' } });
    expect(recordsNamed('lost.153.se')).toEqual([]);
  });
});

describe('OwnershipRegistry.carryOut: a plan made earlier, only the race re-checked', () => {
  const input = (hostname: string) => ({ zoneId: MAIN, hostname, owner: 'consilio' });

  it('carries out a `create` plan without looking at the name again', async () => {
    const plan = await registry().planCname(input('once.153.se'));
    expect(plan).toEqual({ action: 'create' });
    const { created } = await registry().carryOut(input('once.153.se'), { action: 'create' });
    expect(created).toBe(true);
    expect(sandbox.emulator.requests().map((r) => r.method)).toEqual(['GET', 'POST']);
  });

  it('carries out a `reuse` plan with no request at all', async () => {
    const first = await registry().ensureCname(input('kept.153.se'));
    const plan = await registry().planCname(input('kept.153.se'));
    const before = sandbox.emulator.requests().length;
    expect(await registry().carryOut(input('kept.153.se'), plan.action === 'reuse' ? plan : { action: 'create' })).toEqual({ record: first.record, created: false });
    expect(sandbox.emulator.requests()).toHaveLength(before);
  });

  it('someone took the name after the plan: RECORD_EXISTS, their record untouched', async () => {
    const plan = await registry().planCname(input('raced.153.se'));
    const theirs = await dns.createRecord(MAIN, { type: 'CNAME', name: 'raced.153.se', content: 'elsewhere.example', proxied: false, ttl: 1, comment: 'by hand', tags: [] });
    const error = await failureOf(registry().carryOut(input('raced.153.se'), plan.action === 'create' ? plan : { action: 'create' }));
    expect(error.code).toBe('RECORD_EXISTS');
    expect(recordsNamed('raced.153.se')).toEqual([expect.objectContaining({ id: theirs.id, comment: 'by hand' })]);
  });

  it('our own record appeared after the plan (an earlier attempt of the same saga): taken, as created by this call', async () => {
    const plan = await registry().planCname(input('again.153.se'));
    const earlier = await registry().ensureCname(input('again.153.se'));
    const { record, created } = await registry().carryOut(input('again.153.se'), plan.action === 'create' ? plan : { action: 'create' });
    expect(record.id).toBe(earlier.record.id);
    expect(created).toBe(true);
    expect(recordsNamed('again.153.se')).toHaveLength(1);
  });

  it('a retry after a transient failure plans afresh (the failed attempt may have made the record)', async () => {
    sandbox.emulator.setFaults([{ route: 'POST /zones/:zone/dns_records', drop: 'after', times: 1 }]);
    const { created } = await registry().carryOut(input('lost.153.se'), { action: 'create' });
    expect(created).toBe(true);
    expect(recordsNamed('lost.153.se')).toHaveLength(1);
    expect(sandbox.emulator.requests().map((r) => `${r.method} ${r.status}`)).toEqual(['POST dropped', 'GET 200']);
  });
});

describe('OwnershipRegistry: what it reads', () => {
  it('findTunnelCnames answers only the CNAMEs pointing at our tunnel; ownership() says whose each is', async () => {
    await registry().ensureCname({ zoneId: MAIN, hostname: 'mine.153.se', owner: 'consilio' });
    const records = await registry().findTunnelCnames(MAIN);
    expect(records.every((record) => record.type === 'CNAME' && record.content === FIXTURE_TUNNEL_TARGET)).toBe(true);
    const mine = records.find((record) => record.name === 'mine.153.se');
    const chat = records.find((record) => record.name === 'chat.153.se');
    expect(mine && registry().ownership(mine)).toEqual({ kind: 'ours', owner: 'consilio' });
    expect(chat && registry().ownership(chat)).toEqual({ kind: 'foreign' });
  });
});
