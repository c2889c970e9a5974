import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FIXTURE_ZONES,
  startCloudflareEmulator,
  type CloudflareEmulator,
} from '../../../src/sandbox/cloudflare-emulator/index.ts';

const MAIN = FIXTURE_ZONES.main.id;
const PAID = FIXTURE_ZONES.paid.id;
const TARGET = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b.cfargotunnel.com';
const READ_ONLY = 'read-only-token-0000000000000000000000000';

let emulator: CloudflareEmulator;
beforeEach(async () => {
  emulator = await startCloudflareEmulator({ extraTokens: [{ token: READ_ONLY, scopes: ['zone:read', 'dns:read'] }] });
});
afterEach(async () => {
  await emulator.close();
});

async function api(method: string, path: string, body?: unknown, token: string | null = emulator.token) {
  const response = await fetch(`${emulator.apiBaseUrl}${path}`, {
    method,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, headers: response.headers, json: (await response.json()) as Record<string, any> };
}

const cname = (name: string, extra: Record<string, unknown> = {}) => ({ type: 'CNAME', name, content: TARGET, proxied: true, ...extra });

describe('Cloudflare emulator: envelope', () => {
  it('answers with success, errors, messages, result and result_info on lists', async () => {
    const { status, json } = await api('GET', '/zones');
    expect(status).toBe(200);
    expect(Object.keys(json).sort()).toEqual(['errors', 'messages', 'result', 'result_info', 'success']);
    expect(json.success).toBe(true);
    expect(json.result_info).toEqual({ page: 1, per_page: 20, count: 3, total_count: 3, total_pages: 1 });
    expect(json.result.map((z: { name: string }) => z.name)).toEqual(['153.se', 'horizon-lab.dev', 'odin-studio.net']);
    expect(json.result[0]).toMatchObject({ id: MAIN, status: 'active', plan: { legacy_id: 'free' }, account: { id: emulator.accountId } });
  });

  it('answers failures with success false, result null and Cloudflare codes', async () => {
    const { status, json } = await api('GET', '/zones/00000000000000000000000000000000/dns_records');
    expect(status).toBe(404);
    expect(json).toMatchObject({ success: false, result: null, messages: [], errors: [{ code: 7003 }] });
  });

  it('paginates with page and per_page, and an empty page after the last', async () => {
    const second = await api('GET', `/zones/${MAIN}/dns_records?per_page=5&page=2`);
    expect(second.json.result_info).toEqual({ page: 2, per_page: 5, count: 1, total_count: 6, total_pages: 2 });
    const beyond = await api('GET', `/zones/${MAIN}/dns_records?per_page=5&page=3`);
    expect(beyond.json.result).toEqual([]);
  });

  it('filters records by name.exact, type, content.exact, comment.contains and name (plain)', async () => {
    const byName = await api('GET', `/zones/${MAIN}/dns_records?name.exact=CHAT.153.se`);
    expect(byName.json.result.map((r: { name: string }) => r.name)).toEqual(['chat.153.se']);
    const tunnel = await api('GET', `/zones/${MAIN}/dns_records?type=CNAME&content.exact=${TARGET}`);
    expect(tunnel.json.result).toHaveLength(4);
    const comment = await api('GET', `/zones/${MAIN}/dns_records?comment.contains=BY%20HAND`);
    expect(comment.json.result.map((r: { name: string }) => r.name)).toEqual(['www.153.se']);
    const plain = await api('GET', `/zones/${MAIN}/dns_records?name=www.153.se&type=A`);
    expect(plain.json.result).toHaveLength(1);
  });

  it('filters zones by name, status and account.id', async () => {
    expect((await api('GET', '/zones?name=153.se')).json.result).toHaveLength(1);
    expect((await api('GET', '/zones?name=ends_with:.dev')).json.result[0].name).toBe('horizon-lab.dev');
    expect((await api('GET', `/zones?account.id=${emulator.accountId}&status=active`)).json.result).toHaveLength(3);
    expect((await api('GET', '/zones?account.id=ffffffffffffffffffffffffffffffff')).json.result).toHaveLength(0);
  });
});

describe('Cloudflare emulator: record validation', () => {
  it('creates a proxied CNAME with TTL auto and its comment', async () => {
    const { status, json } = await api('POST', `/zones/${MAIN}/dns_records`, cname('app.153.se', { comment: 'hello' }));
    expect(status).toBe(200);
    expect(json.result).toMatchObject({ name: 'app.153.se', type: 'CNAME', content: TARGET, proxied: true, ttl: 1, comment: 'hello', tags: [] });
    expect(json.result.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('takes @ and bare labels relative to the zone, and refuses names outside it (9005)', async () => {
    expect((await api('POST', `/zones/${MAIN}/dns_records`, cname('bare'))).json.result.name).toBe('bare.153.se');
    const outside = await api('POST', `/zones/${MAIN}/dns_records`, cname('app.example.com'));
    expect(outside.status).toBe(400);
    expect(outside.json.errors[0]).toMatchObject({ code: 9005, message: expect.stringContaining('not inside the zone 153.se') });
  });

  it('refuses CNAME content that is not a hostname (9007)', async () => {
    for (const content of ['192.0.2.1', 'not a host', '']) {
      const { status, json } = await api('POST', `/zones/${MAIN}/dns_records`, cname('bad.153.se', { content }));
      expect(status).toBe(400);
      expect(json.errors[0].code).toBe(9007);
    }
  });

  it('limits comments to 100 characters on Free and 500 on a paid plan (9313)', async () => {
    const free = await api('POST', `/zones/${MAIN}/dns_records`, cname('long.153.se', { comment: 'x'.repeat(101) }));
    expect(free.status).toBe(400);
    expect(free.json.errors[0]).toMatchObject({ code: 9313, message: expect.stringContaining('100 characters') });
    expect((await api('POST', `/zones/${MAIN}/dns_records`, cname('exact.153.se', { comment: 'x'.repeat(100) }))).status).toBe(200);
    expect((await api('POST', `/zones/${PAID}/dns_records`, cname('long.horizon-lab.dev', { comment: 'x'.repeat(500) }))).status).toBe(200);
  });

  it('allows tags only on paid plans', async () => {
    const free = await api('POST', `/zones/${MAIN}/dns_records`, cname('tagged.153.se', { tags: ['owner:x'] }));
    expect(free.status).toBe(400);
    const paid = await api('POST', `/zones/${PAID}/dns_records`, cname('tagged.horizon-lab.dev', { tags: ['owner:x'] }));
    expect(paid.json.result.tags).toEqual(['owner:x']);
  });

  it('answers 81053 when a CNAME would share its name, and 81058 for an identical record', async () => {
    const overA = await api('POST', `/zones/${MAIN}/dns_records`, cname('www.153.se'));
    expect(overA.status).toBe(400);
    expect(overA.json.errors[0].code).toBe(81053);
    const aOverCname = await api('POST', `/zones/${MAIN}/dns_records`, { type: 'A', name: 'chat.153.se', content: '192.0.2.5' });
    expect(aOverCname.json.errors[0].code).toBe(81053);
    const identical = await api('POST', `/zones/${MAIN}/dns_records`, cname('chat.153.se'));
    expect(identical.json.errors[0].code).toBe(81058);
  });

  it('patches, replaces and deletes a record; an unknown record is 81044', async () => {
    const id = (await api('POST', `/zones/${MAIN}/dns_records`, cname('edit.153.se'))).json.result.id;
    expect((await api('PATCH', `/zones/${MAIN}/dns_records/${id}`, { comment: 'patched' })).json.result).toMatchObject({ comment: 'patched', content: TARGET });
    expect((await api('PUT', `/zones/${MAIN}/dns_records/${id}`, cname('edit.153.se', { proxied: false }))).json.result).toMatchObject({ proxied: false, comment: null });
    expect((await api('DELETE', `/zones/${MAIN}/dns_records/${id}`)).json.result).toEqual({ id });
    const gone = await api('GET', `/zones/${MAIN}/dns_records/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.json.errors[0].code).toBe(81044);
  });
});

describe('Cloudflare emulator: tokens', () => {
  it('answers 9109 to an unknown token, 6003 to a missing header, 10000 to a token without the permission', async () => {
    const unknown = await api('GET', '/zones', undefined, 'not-a-token');
    expect(unknown.status).toBe(403);
    expect(unknown.json.errors).toEqual([{ code: 9109, message: 'Invalid access token' }]);
    const missing = await api('GET', '/zones', undefined, null);
    expect(missing.status).toBe(400);
    expect(missing.json.errors[0]).toMatchObject({ code: 6003, error_chain: [{ code: 6111 }] });
    expect((await api('GET', '/zones', undefined, READ_ONLY)).status).toBe(200);
    const readOnly = await api('POST', `/zones/${MAIN}/dns_records`, cname('ro.153.se'), READ_ONLY);
    expect(readOnly.status).toBe(403);
    expect(readOnly.json.errors).toEqual([{ code: 10000, message: 'Authentication error' }]);
  });
});

describe('Cloudflare emulator: tunnel configuration', () => {
  it('returns the configuration, and a PUT replaces it and bumps the version; a config without catch-all is refused', async () => {
    const path = `/accounts/${emulator.accountId}/cfd_tunnel/${emulator.tunnelId}/configurations`;
    // The seeded tunnel runs from a config.yml (locally managed) until a configuration is PUT.
    expect((await api('GET', path)).json.result).toMatchObject({ tunnel_id: emulator.tunnelId, version: 0, source: 'local', config: null });
    const ingress = [{ hostname: 'app.153.se', service: 'http://localhost:3100' }, { hostname: '', service: 'http_status:404' }];
    expect((await api('PUT', path, { config: { ingress } })).json.result).toMatchObject({ version: 1, source: 'cloudflare', config: { ingress } });
    const bad = await api('PUT', path, { config: { ingress: [{ hostname: 'app.153.se', service: 'http://localhost:3100' }] } });
    expect(bad.status).toBe(400);
    expect((await api('GET', `/accounts/${emulator.accountId}/cfd_tunnel/00000000-0000-0000-0000-000000000000/configurations`)).status).toBe(404);
  });
});

describe('Cloudflare emulator: faults and admin', () => {
  it('applies faults set at run time through the admin endpoint, counting `times`', async () => {
    const admin = (method: string, path: string, body?: unknown, token = emulator.adminToken) =>
      fetch(`${emulator.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    expect((await admin('POST', '/__admin/faults', { faults: [{ route: 'GET /zones', status: 429, retryAfterSeconds: 3, times: 1 }] })).status).toBe(200);
    const limited = await api('GET', '/zones');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('3');
    expect(limited.json.errors[0].code).toBe(971);
    expect((await api('GET', '/zones')).status).toBe(200);

    expect((await admin('POST', '/__admin/faults', { faults: [{ route: 'GET /nowhere' }] })).status).toBe(400);
    expect((await admin('GET', '/__admin/state', undefined, 'wrong')).status).toBe(401);
    const state = (await (await admin('GET', '/__admin/state')).json()) as { result: { requests: { route: string; status: number }[] } };
    expect(state.result.requests.map((r) => r.status)).toEqual([429, 200]);
  });

  it('answers 500 and drops connections on request', async () => {
    emulator.setFaults([{ route: '* /zones/:zone/dns_records', status: 500, times: 1 }, { route: 'GET /zones', drop: 'before', times: 1 }]);
    expect((await api('GET', `/zones/${MAIN}/dns_records`)).status).toBe(500);
    await expect(api('GET', '/zones')).rejects.toThrow();
    expect((await api('GET', '/zones')).status).toBe(200);
  });

  it('a connection dropped after the request still applies it', async () => {
    emulator.setFaults([{ route: 'POST /zones/:zone/dns_records', drop: 'after', times: 1 }]);
    await expect(api('POST', `/zones/${MAIN}/dns_records`, cname('dropped.153.se'))).rejects.toThrow();
    expect(emulator.state().records.filter((r) => r.name === 'dropped.153.se')).toHaveLength(1);
  });

  it('resets to the seed', async () => {
    await api('POST', `/zones/${MAIN}/dns_records`, cname('temp.153.se'));
    emulator.reset();
    expect(emulator.state().records.some((r) => r.name === 'temp.153.se')).toBe(false);
    expect(emulator.requests()).toEqual([]);
  });
});

describe('Cloudflare emulator: persistence', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tm-cf-emulator-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its state in a JSON file (mode 0600) and starts from it again', async () => {
    const statePath = join(dir, 'cloudflare.json');
    const first = await startCloudflareEmulator({ statePath });
    await fetch(`${first.apiBaseUrl}/zones/${MAIN}/dns_records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${first.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(cname('kept.153.se')),
    });
    await first.close();
    expect(statSync(statePath).mode & 0o777).toBe(0o600);
    expect(readFileSync(statePath, 'utf8')).toContain('kept.153.se');
    const second = await startCloudflareEmulator({ statePath });
    expect(second.state().records.some((r) => r.name === 'kept.153.se')).toBe(true);
    await second.close();
  });
});
