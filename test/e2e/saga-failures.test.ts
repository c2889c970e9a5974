import type { Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { EventRow } from '../../src/store/events-repository.ts';
import { waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, portOf, startOriginInRange, startTestService, viaEdge, projectPorts } from '../helpers/service.ts';

/**
 * A failure injected at every step of the route saga, with real parts: the Cloudflare API emulator's fault knobs,
 * the real config.yml and its git repository, the stand-in cloudflared refusing a file (TM_STANDIN_FAULT_FILE) or
 * killed with SIGKILL, and SQLite itself refusing a write (a trigger). After each failure: the tool answered isError
 * with the step's code and a fix, and nothing of the request is left — no ledger row, no DNS record, no rule, a
 * `route.failed` event — while what the saga did not make (our own earlier record, the other routes) is untouched.
 */

const faultDir = mkdtempSync(join(tmpdir(), 'tm-saga-faults-'));
const faultFile = join(faultDir, 'standin-faults');
// The stand-in cloudflared inherits this process's environment when the service spawns it (and every replica).
process.env.TM_STANDIN_FAULT_FILE = faultFile;

type ToolError = { code: string; message: string; fix: string; details: Record<string, unknown> };

let env: Awaited<ReturnType<typeof startTestService>>;
let consilio: Client;
let ms: Client;
let origin: Server;
let port: number;
let zoneId: string;
const events: EventRow[] = [];
let unsubscribe: () => void = () => undefined;
const KEEP = 'keep.153.se';

const emulator = () => env.service.sandbox!.emulator;
const recordsNamed = (hostname: string) => emulator().state().records.filter((record) => record.name === hostname);
const configText = () => readFileSync(env.config.cloudflared.configPath, 'utf8');
const hasRule = (hostname: string) => configText().includes(`hostname: ${hostname}`);
const request = (subdomain: string) => call<ToolError>(consilio, 'tunnel_request_cname', { subdomain, targetPort: port });
const postsOf = (since: number) => emulator().requests().filter((entry) => entry.at >= since && entry.route === 'POST /zones/:zone/dns_records');

function ingressState(): unknown {
  return (env.service.supervisor.actor.getSnapshot().children as Record<string, { getSnapshot(): { value: unknown } }>).ingress!.getSnapshot().value;
}

/** Lets a cycle started by the file watcher (or a compensation) finish before the next case changes the world. */
async function ingressSettled(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  await waitUntil(() => ingressState() === 'idle', 30_000, 'the ingress actor to be idle');
}

/** Everything the brief asks of a rolled-back request. */
function expectRolledBack(result: { isError: boolean; data: ToolError }, hostname: string, code: string): void {
  expect(result.isError, JSON.stringify(result.data)).toBe(true);
  expect(result.data.code, JSON.stringify(result.data).slice(0, 2000)).toBe(code);
  expect(result.data.fix.length).toBeGreaterThan(10);
  expect(env.service.backend.findRoute(hostname)).toBeUndefined();
  expect(recordsNamed(hostname)).toEqual([]);
  expect(hasRule(hostname)).toBe(false);
  const failed = events.filter((event) => event.kind === 'route.failed' && event.data.hostname === hostname);
  expect(failed.map((event) => (event.data.error as { code: string }).code)).toEqual([code]);
  expect(failed[0]!.project).toBe('consilio');
}

beforeAll(async () => {
  env = await startTestService(
    // A long backoff keeps the tunnel down (in `backoff`) after a failed start until tunnel_restart.
    { restart: { startTimeoutSeconds: 20, stopGraceSeconds: 5, backoffSeconds: [60] } },
    { tunnelReadyTimeoutMs: 3_000 },
  );
  const info = env.service.sandboxInfo!;
  consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  origin = await startOriginInRange(...projectPorts(env.config, 'consilio', [0.5, 1]), 'consilio-keep');
  port = portOf(origin);
  const allocated = await call<{ port: number }>(consilio, 'port_allocate', { port, purpose: 'saga failure tests' });
  expect(allocated.isError, JSON.stringify(allocated.data)).toBe(false);
  zoneId = env.service.backend.listDomains().find((zone) => zone.name === '153.se')!.zoneId;
  const kept = await request('keep');
  expect(kept.isError, JSON.stringify(kept.data)).toBe(false);
  expect(await viaEdge(info.edgeUrl, KEEP)).toMatchObject({ status: 200 });
  unsubscribe = env.service.bus.subscribe((event) => events.push(event));
}, 90_000);

afterAll(async () => {
  unsubscribe();
  await Promise.all([consilio?.close(), ms?.close()]);
  origin?.close();
  await env?.stop();
  rmSync(faultDir, { recursive: true, force: true });
  delete process.env.TM_STANDIN_FAULT_FILE;
});

describe('a failure at every saga step rolls back fully', () => {
  it('reserve: the ledger refuses the row', async () => {
    const hostname = 'reserve-fail.153.se';
    env.service.db.exec(`CREATE TRIGGER test_refuse_reserve BEFORE INSERT ON routes WHEN NEW.hostname = '${hostname}'
      BEGIN SELECT RAISE(ABORT, 'injected: the ledger refused the reservation'); END`);
    try {
      const since = Date.now();
      const result = await request('reserve-fail');
      expectRolledBack(result, hostname, 'INTERNAL');
      expect(result.data.message).toContain('injected: the ledger refused the reservation');
      expect(postsOf(since)).toEqual([]);
    } finally {
      env.service.db.exec('DROP TRIGGER test_refuse_reserve');
    }
  });

  it('DNS: Cloudflare answers 500 to every create, through all the adapter retries', async () => {
    emulator().setFaults([{ route: 'POST /zones/:zone/dns_records', status: 500 }]);
    try {
      const since = Date.now();
      const result = await request('dns-500');
      expectRolledBack(result, 'dns-500.153.se', 'CLOUDFLARE_UNAVAILABLE');
      // The adapter retried the whole operation (4 attempts), and every create failed.
      expect(postsOf(since).map((entry) => entry.status)).toEqual([500, 500, 500, 500]);
    } finally {
      emulator().setFaults([]);
    }
  });

  it('DNS: 429 with a Retry-After too long to wait for', async () => {
    emulator().setFaults([{ route: 'POST /zones/:zone/dns_records', status: 429, retryAfterSeconds: 600 }]);
    try {
      const since = Date.now();
      const result = await request('dns-429');
      expectRolledBack(result, 'dns-429.153.se', 'CLOUDFLARE_RATE_LIMITED');
      expect(postsOf(since).map((entry) => entry.status)).toEqual([429]);
    } finally {
      emulator().setFaults([]);
    }
  });

  it('DNS: the connection drops before every create took effect', async () => {
    emulator().setFaults([{ route: 'POST /zones/:zone/dns_records', drop: 'before' }]);
    try {
      const since = Date.now();
      const result = await request('dns-drop');
      expectRolledBack(result, 'dns-drop.153.se', 'CLOUDFLARE_UNAVAILABLE');
      expect(postsOf(since).map((entry) => entry.status)).toEqual(['dropped', 'dropped', 'dropped', 'dropped']);
    } finally {
      emulator().setFaults([]);
    }
  });

  it('DNS: the create took effect but its answer was lost, then Cloudflare stayed down: the record it made is removed', async () => {
    const hostname = 'dns-lost.153.se';
    emulator().setFaults([{ route: 'POST /zones/:zone/dns_records', drop: 'after', latencyMs: 300, times: 1 }]);
    try {
      const since = Date.now();
      const pending = request('dns-lost');
      // While the create is in flight, make every lookup of the adapter's three retries fail.
      await waitUntil(() => emulator().faults()[0]!.hits === 1, 10_000, 'the create to reach the emulator');
      emulator().addFaults([{ route: 'GET /zones/:zone/dns_records', status: 503, times: 3 }]);
      const result = await pending;
      expectRolledBack(result, hostname, 'CLOUDFLARE_UNAVAILABLE');
      const log = emulator().requests().filter((entry) => entry.at >= since);
      expect(postsOf(since).map((entry) => entry.status)).toEqual(['dropped']);
      // The create HAD taken effect: the step removed that record itself.
      expect(log.filter((entry) => entry.route === 'DELETE /zones/:zone/dns_records/:record').map((entry) => entry.status)).toEqual([200]);
      expect(result.data.details.cleanup).toBe('deleted the record the failed create had made');
    } finally {
      emulator().setFaults([]);
    }
  });

  it('ingress (render): config.yml was hand-edited into a file cloudflared would refuse', async () => {
    const good = configText();
    writeFileSync(env.config.cloudflared.configPath, `${good}\n  - hostname: broken.153.se\n    service: [not, a, url]\n`);
    try {
      const result = await request('ingress-render');
      expectRolledBack(result, 'ingress-render.153.se', 'CONFIG_FILE_DRIFT');
    } finally {
      writeFileSync(env.config.cloudflared.configPath, good);
      await ingressSettled();
    }
    expect(configText()).toBe(good);
  });

  it('ingress (write): git cannot commit the new version; our own earlier record of that name is kept', async () => {
    const hostname = 'pre.153.se';
    // A CNAME of ours for consilio that this request did not make (an earlier route's, left in Cloudflare).
    const made = await fetch(`${env.service.sandbox!.apiBaseUrl}/zones/${zoneId}/dns_records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.service.sandbox!.apiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'CNAME',
        name: hostname,
        content: `${env.config.tunnel.id}.cfargotunnel.com`,
        proxied: true,
        comment: 'tunnel-manager:owner=consilio',
      }),
    });
    const earlier = ((await made.json()) as { result: { id: string } }).result;
    const lock = join(dirname(env.config.cloudflared.configPath), '.git', 'index.lock');
    writeFileSync(lock, '');
    try {
      const result = await request('pre');
      expect(result.isError, JSON.stringify(result.data)).toBe(true);
      expect(result.data.code).toBe('GIT_FAILED');
      expect(result.data.fix).toContain('git');
      expect(env.service.backend.findRoute(hostname)).toBeUndefined();
      expect(hasRule(hostname)).toBe(false);
      expect(events.filter((e) => e.kind === 'route.failed' && e.data.hostname === hostname)).toHaveLength(1);
      // The rollback did not delete a record the saga had only reused.
      expect(recordsNamed(hostname).map((record) => record.id)).toEqual([earlier.id]);
    } finally {
      rmSync(lock, { force: true });
      await ingressSettled();
    }
  });

  it('reload: cloudflared refuses the new file; the tunnel keeps serving the other routes during and after', async () => {
    writeFileSync(faultFile, 'refuse-hostname reload-fail.153.se\n');
    const edge = env.service.sandboxInfo!.edgeUrl;
    const before = (await env.service.driver.current())?.pid;
    const statuses: number[] = [];
    let done = false;
    const traffic = (async () => {
      while (!done) statuses.push((await viaEdge(edge, KEEP).catch(() => ({ status: 0 }))).status);
    })();
    try {
      const result = await request('reload-fail');
      expectRolledBack(result, 'reload-fail.153.se', 'RELOAD_FAILED');
      expect(result.data.message).toContain('the last good version was restored');
      expect(result.data.message).toContain('fault injected');
    } finally {
      done = true;
      await traffic;
      rmSync(faultFile, { force: true });
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(await viaEdge(edge, KEEP)).toMatchObject({ status: 200, body: expect.stringContaining('consilio-keep') });
    expect(hasRule(KEEP)).toBe(true);
    // The refused replica never took over, so the restored file is what the running process already serves:
    // no reload after the refused one (a reload would have replaced this process by a new replica).
    expect(before).toBeGreaterThan(0);
    expect((await env.service.driver.current())?.pid).toBe(before);
  }, 60_000);

  it('reload refused, then the undo cannot delete the record (DNS DELETE 500): a row every tool sees keeps the record, and it can be deleted', async () => {
    const hostname = 'undo-fail.153.se';
    writeFileSync(faultFile, `refuse-hostname ${hostname}\n`);
    emulator().setFaults([{ route: 'DELETE /zones/:zone/dns_records/:record', status: 500 }]);
    let result: Awaited<ReturnType<typeof request>>;
    try {
      result = await request('undo-fail');
    } finally {
      rmSync(faultFile, { force: true });
      emulator().setFaults([]);
    }
    expect(result.isError, JSON.stringify(result.data)).toBe(true);
    expect(result.data.code).toBe('RELOAD_FAILED');
    // The record the request made is still there, so the answer says so, and the ledger keeps a row for it.
    expect(recordsNamed(hostname)).toHaveLength(1);
    expect(result.data.message).toContain('could not be deleted');
    expect(result.data.details).toMatchObject({ recordLeft: true, ledgerStatus: 'deleting' });
    expect(hasRule(hostname)).toBe(false);
    const row = env.service.backend.findRoute(hostname);
    expect(row).toMatchObject({ project: 'consilio', status: 'deleting', requestId: null, dnsCreated: true });
    expect(row?.lastError).toContain('CLOUDFLARE_UNAVAILABLE');
    for (const client of [consilio, ms]) {
      const listed = await call<{ routes: { hostname: string; status: string }[] }>(client, 'tunnel_list_cnames', { limit: 1000 });
      expect(listed.data.routes.find((route) => route.hostname === hostname)?.status).toBe('deleting');
    }
    // The owner is told, with the fix.
    const told = events.find((event) => event.kind === 'route.delete_failed' && event.data.hostname === hostname);
    expect(told?.project).toBe('consilio');
    // With Cloudflare back, the owner deletes it (or the retry schedule, 5 s after the failure, got there first).
    const deleted = await call<ToolError>(consilio, 'tunnel_delete_cname', { hostname });
    if (deleted.isError) expect(['ROUTE_NOT_FOUND', 'ROUTE_BUSY']).toContain(deleted.data.code);
    await waitUntil(() => (env.service.backend.findRoute(hostname) === undefined ? true : undefined), 20_000, 'the delete to finish');
    expect(recordsNamed(hostname)).toEqual([]);
  }, 60_000);

  it('the orphan scan lists every record of ours with no row, and its owner or the meta-supervisor can delete it', async () => {
    const hostname = 'lost-row.153.se';
    const made = await fetch(`${env.service.sandbox!.apiBaseUrl}/zones/${zoneId}/dns_records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.service.sandbox!.apiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'CNAME', name: hostname, content: `${env.config.tunnel.id}.cfargotunnel.com`, proxied: true, comment: 'tunnel-manager:owner=consilio' }),
    });
    expect(made.status).toBe(200);
    const scan = await call<{ unledgered: { hostname: string; owner: string; fix: string }[] }>(ms, 'tunnel_scan_orphans');
    expect(scan.isError, JSON.stringify(scan.data)).toBe(false);
    const listed = scan.data.unledgered.find((record) => record.hostname === hostname);
    expect(listed).toMatchObject({ owner: 'consilio' });
    expect(listed?.fix).toContain('tunnel_delete_cname');
    // Another project may not delete it; its owner may.
    const odin = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens.odin!);
    try {
      const refused = await call<ToolError>(odin, 'tunnel_delete_cname', { hostname });
      expect(refused.isError).toBe(true);
      expect(refused.data.code).toBe('ROUTE_NOT_OWNED');
    } finally {
      await odin.close();
    }
    expect(recordsNamed(hostname)).toHaveLength(1);
    const deleted = await call<{ deleted: boolean; dnsRecordDeleted: boolean }>(consilio, 'tunnel_delete_cname', { hostname });
    expect(deleted.isError, JSON.stringify(deleted.data)).toBe(false);
    expect(deleted.data).toMatchObject({ deleted: true, dnsRecordDeleted: true });
    expect(recordsNamed(hostname)).toEqual([]);
  }, 60_000);

  it('tunnel not ready: cloudflared died and its new start does not get ready in time', async () => {
    // A start that is slow to connect: the tunnel stays `starting`, so the request goes ahead (a tunnel in a long
    // backoff is refused before anything is created: test/e2e/tunnel-down-requests.test.ts) and its saga waits for
    // the tunnel until its timeout (3 s here).
    writeFileSync(faultFile, 'slow-start 30\n');
    try {
      const live = await env.service.driver.current();
      process.kill(live!.pid!, 'SIGKILL');
      await waitUntil(() => env.service.backend.status().state === 'starting', 30_000, 'the tunnel to be starting again');
      const result = await request('not-ready');
      expectRolledBack(result, 'not-ready.153.se', 'TUNNEL_NOT_RUNNING');
    } finally {
      rmSync(faultFile, { force: true });
    }
    const restarted = await call<{ state: string }>(ms, 'tunnel_restart');
    expect(restarted.isError, JSON.stringify(restarted.data)).toBe(false);
    expect(restarted.data.state).toMatch(/^running/);
    await waitUntil(async () => (await viaEdge(env.service.sandboxInfo!.edgeUrl, KEEP)).status === 200 || undefined, 20_000, 'the kept route to answer again');
  }, 90_000);

  it('activation: the ledger refuses to mark the route active', async () => {
    const hostname = 'activate-fail.153.se';
    env.service.db.exec(`CREATE TRIGGER test_refuse_activation BEFORE UPDATE OF status ON routes WHEN NEW.status = 'active' AND NEW.hostname = '${hostname}'
      BEGIN SELECT RAISE(ABORT, 'injected: the ledger refused the activation'); END`);
    try {
      const result = await request('activate-fail');
      expectRolledBack(result, hostname, 'INTERNAL');
      expect(result.data.message).toContain('injected: the ledger refused the activation');
      // It had gone all the way: DNS, rule, reload and tunnel wait were done, then undone.
      expect((result.data.details.timings as { step: string }[]).map((t) => t.step)).toEqual(
        expect.arrayContaining(['reserve', 'dns', 'ingress', 'tunnelReady', 'removeIngress', 'deleteDns', 'release']),
      );
    } finally {
      env.service.db.exec('DROP TRIGGER test_refuse_activation');
    }
  }, 60_000);

  it('after all of that the service is whole: the kept route serves and a new request succeeds', async () => {
    const result = await call<{ hostname: string }>(consilio, 'tunnel_request_cname', { subdomain: 'after', targetPort: port });
    expect(result.isError, JSON.stringify(result.data)).toBe(false);
    expect(await viaEdge(env.service.sandboxInfo!.edgeUrl, 'after.153.se')).toMatchObject({ status: 200 });
    expect(await viaEdge(env.service.sandboxInfo!.edgeUrl, KEEP)).toMatchObject({ status: 200 });
    const routes = env.service.backend.listRoutes({ project: 'consilio' }).map((route) => [route.hostname, route.status]);
    expect(routes.sort()).toEqual([
      ['after.153.se', 'active'],
      [KEEP, 'active'],
      // The earlier record of ours the git case kept, taken into the ledger by the orphan scan of the case above.
      ['pre.153.se', 'adopted'],
    ]);
  }, 60_000);
});
