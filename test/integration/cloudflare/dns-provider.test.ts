import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCloudflareClient } from '../../../src/cloudflare/client.ts';
import { createDnsProvider, type DnsProvider } from '../../../src/cloudflare/dns-provider.ts';
import { RateLimiter } from '../../../src/cloudflare/rate-limiter.ts';
import { FIXTURE_TUNNEL_TARGET, FIXTURE_ZONES } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { failureOf, startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

/**
 * The provider alone (src/cloudflare/dns-provider.ts): plain CRUD over the real SDK against the emulator on
 * 127.0.0.1. No owners and no retries here: those are the registry's (ownership-registry.test.ts).
 */

const MAIN = FIXTURE_ZONES.main.id;
let sandbox: CloudflareSandbox;
let provider: DnsProvider;

beforeEach(async () => {
  sandbox = await startCloudflareSandbox();
  const client = createCloudflareClient({ apiBaseUrl: sandbox.emulator.apiBaseUrl, apiToken: sandbox.emulator.token, rateLimiter: new RateLimiter() });
  provider = createDnsProvider(client, { recordsPerPage: 5 });
});
afterEach(async () => {
  await sandbox.close();
});

const cname = (name: string, fields: { comment?: string; tags?: string[]; proxied?: boolean } = {}) => ({
  type: 'CNAME' as const,
  name,
  content: FIXTURE_TUNNEL_TARGET,
  proxied: fields.proxied ?? true,
  ttl: 1,
  comment: fields.comment ?? 'written by hand',
  tags: fields.tags ?? [],
});

describe('DnsProvider: plain CRUD through the real SDK', () => {
  it('creates a record as given (any comment, no marker added, no tags sent when there are none) and lists it by name', async () => {
    const created = await provider.createRecord(MAIN, cname('Plain.153.se'));
    expect(created).toMatchObject({ name: 'plain.153.se', type: 'CNAME', content: FIXTURE_TUNNEL_TARGET, comment: 'written by hand', tags: [], zoneId: MAIN });
    const post = sandbox.emulator.requests().find((request) => request.method === 'POST');
    expect(post?.status).toBe(200);
    expect(await provider.listRecords(MAIN, { name: 'plain.153.se' })).toEqual([created]);
  });

  it('lists by content and type over every page, and the whole zone without a filter', async () => {
    const before = (await provider.listRecords(MAIN)).length;
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) await provider.createRecord(MAIN, cname(`${name}.153.se`));
    const pointing = await provider.listRecords(MAIN, { type: 'CNAME', content: FIXTURE_TUNNEL_TARGET });
    expect(pointing.map((record) => record.name)).toEqual(expect.arrayContaining(['a.153.se', 'f.153.se']));
    expect(pointing.every((record) => record.content === FIXTURE_TUNNEL_TARGET)).toBe(true);
    expect(await provider.listRecords(MAIN)).toHaveLength(before + 6);
  });

  it('updates proxied and ttl of a record, keeping its comment', async () => {
    const created = await provider.createRecord(MAIN, cname('grey.153.se', { proxied: false }));
    const updated = await provider.updateRecord(created, { proxied: true, ttl: 1 });
    expect(updated).toMatchObject({ id: created.id, proxied: true, comment: 'written by hand' });
  });

  it('deletes a record, and answers `absent` for one that is not there', async () => {
    const created = await provider.createRecord(MAIN, cname('short.153.se'));
    expect(await provider.deleteRecord(created)).toBe('deleted');
    expect(await provider.deleteRecord(created)).toBe('absent');
    expect(await provider.listRecords(MAIN, { name: 'short.153.se' })).toEqual([]);
  });

  it('does not retry: a dropped request is one CLOUDFLARE_UNAVAILABLE, one request', async () => {
    sandbox.emulator.setFaults([{ route: 'GET /zones/:zone/dns_records', drop: 'before', times: 1 }]);
    const error = await failureOf(provider.listRecords(MAIN, { name: 'www.153.se' }));
    expect(error.code).toBe('CLOUDFLARE_UNAVAILABLE');
    expect(error.message).toContain('looking up the records named www.153.se');
    expect(sandbox.emulator.requests()).toHaveLength(1);
  });

  it('maps a create on a taken name to RECORD_EXISTS, and an unknown zone to ZONE_NOT_FOUND', async () => {
    await provider.createRecord(MAIN, cname('taken.153.se'));
    expect((await failureOf(provider.createRecord(MAIN, cname('taken.153.se', { comment: 'other' })))).code).toBe('RECORD_EXISTS');
    expect((await failureOf(provider.listRecords('0'.repeat(32), { name: 'x.nowhere.se' }))).code).toBe('ZONE_NOT_FOUND');
  });
});
