import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * Notifications over real Streamable HTTP (the SDK client's standalone SSE stream): resource subscriptions to
 * tunnel://status and tunnel://routes/<project>, logging messages for every event a session may see, and the
 * events log read from a cursor so a project that was offline misses nothing and sees nothing twice.
 */

interface EventView {
  id: number;
  kind: string;
  project: string;
  data: Record<string, unknown>;
}
interface LogData {
  id: number;
  kind: string;
  project: string;
  [key: string]: unknown;
}

/** A client that records what the server pushes to it. */
interface Listener {
  client: Client;
  updates: string[];
  logs: { level: string; data: LogData }[];
}

let env: Awaited<ReturnType<typeof startTestService>>;
let mcpUrl: string;
let tokens: Record<string, string>;
let consilio: Listener;
let odin: Listener;
let ms: Client;

async function listener(project: string): Promise<Listener> {
  const client = await mcpClient(mcpUrl, tokens[project]!);
  const result: Listener = { client, updates: [], logs: [] };
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
    result.updates.push(notification.params.uri);
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
    result.logs.push({ level: notification.params.level, data: notification.params.data as LogData });
  });
  return result;
}

async function events(client: Client, cursor: number, limit?: number): Promise<{ events: EventView[]; nextCursor: number }> {
  const result = await call<{ events: EventView[]; nextCursor: number }>(client, 'tunnel_get_events', { cursor, ...(limit ? { limit } : {}) });
  expect(result.isError, JSON.stringify(result.data)).toBe(false);
  return result.data;
}

/** Reads the whole log from `cursor` in pages of `limit`, following nextCursor. */
async function readAll(client: Client, cursor: number, limit: number): Promise<{ events: EventView[]; nextCursor: number }> {
  const all: EventView[] = [];
  let next = cursor;
  for (;;) {
    const page = await events(client, next, limit);
    expect(page.events.length).toBeLessThanOrEqual(limit);
    if (page.events.length === 0) {
      expect(page.nextCursor).toBe(next);
      return { events: all, nextCursor: next };
    }
    expect(page.nextCursor).toBe(page.events.at(-1)!.id);
    all.push(...page.events);
    next = page.nextCursor;
  }
}

const hasLog = (who: Listener, kind: string, match: (data: LogData) => boolean = () => true) => who.logs.some((log) => log.data.kind === kind && match(log.data));

beforeAll(async () => {
  env = await startTestService();
  const info = env.service.sandboxInfo!;
  mcpUrl = info.mcpUrl;
  tokens = info.tokens;
  consilio = await listener('consilio');
  odin = await listener('odin');
  ms = await mcpClient(mcpUrl, tokens['meta-supervisor']!);
  await consilio.client.subscribeResource({ uri: 'tunnel://status' });
  await consilio.client.subscribeResource({ uri: 'tunnel://routes/consilio' });
  await odin.client.subscribeResource({ uri: 'tunnel://routes/odin' });
}, 60_000);

afterAll(async () => {
  await Promise.all([consilio?.client.close(), odin?.client.close(), ms?.close()]);
  await env?.stop();
});

describe('tunnel down and recovery', () => {
  it('a restart by the meta-supervisor reaches every session: tunnel://status updated, tunnel.restarted logged (no outage)', async () => {
    const before = await events(ms, 0, 500);
    const previous = env.service.backend.status().pid;
    const restart = await call<{ state: string; pid: number }>(ms, 'tunnel_restart');
    expect(restart.isError, JSON.stringify(restart.data)).toBe(false);

    await waitUntil(() => hasLog(consilio, 'tunnel.restarted') || undefined, 10_000, 'consilio to hear tunnel.restarted');
    expect(consilio.updates).toContain('tunnel://status');
    const restarted = consilio.logs.find((log) => log.data.kind === 'tunnel.restarted')!;
    expect(restarted.data).toMatchObject({ project: '*', previousPid: previous, pid: restart.data.pid, outage: false });
    expect(restarted.level).toBe('notice');

    // A logging message goes to every connected session, subscribed to tunnel://status or not.
    await waitUntil(() => hasLog(odin, 'tunnel.restarted') || undefined, 10_000, 'odin to hear tunnel.restarted');
    expect(odin.updates).not.toContain('tunnel://status');

    // The replacement took nothing down: the events log has the restart alone, once, after what was there before.
    const after = await events(ms, before.nextCursor, 500);
    expect(after.events.map((e) => e.kind)).toEqual(['tunnel.restarted']);
    expect(after.events.map((e) => e.id)).toEqual([restarted.data.id]);
  }, 60_000);

  it('a crash reaches every session: tunnel.down (an error) then tunnel.recovered, in that order', async () => {
    const before = await events(ms, 0, 500);
    process.kill(env.service.backend.status().pid as number, 'SIGKILL');
    await waitUntil(() => hasLog(consilio, 'tunnel.recovered') || undefined, 20_000, 'consilio to hear tunnel.recovered');
    const kinds = consilio.logs.map((log) => log.data.kind);
    expect(kinds.indexOf('tunnel.down')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('tunnel.down')).toBeLessThan(kinds.indexOf('tunnel.recovered'));
    const down = consilio.logs.find((log) => log.data.kind === 'tunnel.down')!;
    expect(down.data).toMatchObject({ project: '*', reason: expect.stringContaining('cloudflared') });
    expect(down.level).toBe('error');
    await waitUntil(() => hasLog(odin, 'tunnel.recovered') || undefined, 10_000, 'odin to hear tunnel.recovered');
    const after = await events(ms, before.nextCursor, 500);
    expect(after.events.map((e) => e.kind)).toEqual(['tunnel.down', 'tunnel.recovered']);
  }, 60_000);
});

describe('route changes', () => {
  it("a project hears about its own routes and not about another project's", async () => {
    const consilioPort = await call<{ port: number }>(consilio.client, 'port_allocate', { purpose: 'notify test' });
    const odinPort = await call<{ port: number }>(odin.client, 'port_allocate', { purpose: 'notify test' });
    const updatesBefore = consilio.updates.length;

    // Nothing listens on the port: this file is about the MCP surface, so the route is published ahead of its service.
    const published = await call(consilio.client, 'tunnel_request_cname', { subdomain: 'notify', targetPort: consilioPort.data.port, publishAhead: true });
    expect(published.isError, JSON.stringify(published.data)).toBe(false);
    await waitUntil(() => hasLog(consilio, 'route.created', (d) => d.hostname === 'notify.153.se') || undefined, 10_000, 'consilio to hear route.created');
    const newUpdates = consilio.updates.slice(updatesBefore);
    expect(newUpdates).toContain('tunnel://routes/consilio');
    const created = consilio.logs.find((log) => log.data.kind === 'route.created')!;
    expect(created.data).toMatchObject({ project: 'consilio', hostname: 'notify.153.se', url: 'https://notify.153.se', target: `http://localhost:${consilioPort.data.port}` });

    // The resource it was told about now lists the route.
    const resource = await consilio.client.readResource({ uri: 'tunnel://routes/consilio' });
    const body = JSON.parse((resource.contents[0] as { text: string }).text) as { routes: { hostname: string; status: string }[] };
    expect(body.routes).toEqual([expect.objectContaining({ hostname: 'notify.153.se', status: 'active' })]);

    // odin publishes too; once it has heard of its own route, it has heard everything sent before: nothing of consilio's.
    const odinRoute = await call(odin.client, 'tunnel_request_cname', { subdomain: 'odin-notify', targetPort: odinPort.data.port, publishAhead: true });
    expect(odinRoute.isError, JSON.stringify(odinRoute.data)).toBe(false);
    await waitUntil(() => hasLog(odin, 'route.created', (d) => d.hostname === 'odin-notify.153.se') || undefined, 10_000, 'odin to hear its route.created');
    expect(odin.updates).toContain('tunnel://routes/odin');
    expect(odin.logs.filter((log) => log.data.project === 'consilio')).toEqual([]);
    expect(odin.updates).not.toContain('tunnel://routes/consilio');
    // …and consilio heard nothing of odin's (its logs are in order, and the restart came after).
    const restartsHeard = consilio.logs.filter((log) => log.data.kind === 'tunnel.restarted').length;
    await call(ms, 'tunnel_restart');
    await waitUntil(() => consilio.logs.filter((log) => log.data.kind === 'tunnel.restarted').length > restartsHeard || undefined, 10_000, 'the next restart');
    expect(consilio.logs.filter((log) => log.data.project === 'odin')).toEqual([]);
    expect(consilio.updates).not.toContain('tunnel://routes/odin');
  }, 60_000);
});

describe('tunnel_get_events from a cursor', () => {
  it('returns the events in order; paging with nextCursor misses none and repeats none', async () => {
    const whole = await events(ms, 0, 500);
    const ids = whole.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(whole.nextCursor).toBe(ids.at(-1));
    expect(whole.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['tunnel.down', 'tunnel.recovered', 'route.created']));

    for (const pageSize of [1, 2, 3]) {
      const paged = await readAll(ms, 0, pageSize);
      expect(paged.events).toEqual(whole.events);
      expect(paged.nextCursor).toBe(whole.nextCursor);
    }
    // From the middle: exactly the rest.
    const middle = ids[Math.floor(ids.length / 2)]!;
    expect((await readAll(ms, middle, 2)).events).toEqual(whole.events.filter((e) => e.id > middle));
  });

  it("a project sees its own events and the broadcast ones, never another project's", async () => {
    const all = (await events(ms, 0, 500)).events;
    expect(all.some((e) => e.project === 'odin')).toBe(true);
    for (const project of ['consilio', 'odin']) {
      const client = project === 'consilio' ? consilio.client : odin.client;
      const own = await readAll(client, 0, 2);
      expect(own.events).toEqual(all.filter((e) => e.project === project || e.project === '*'));
      expect(own.events.some((e) => e.project === project)).toBe(true);
      expect(own.events.some((e) => e.project === '*')).toBe(true);
    }
  });

  it('a project that was offline resumes from its cursor: every event since, none twice, in order', async () => {
    const seen = await readAll(consilio.client, 0, 100);
    await consilio.client.close();

    // While consilio is away: the meta-supervisor removes its route and odin's, and restarts the tunnel.
    expect((await call(ms, 'tunnel_delete_cname', { hostname: 'notify.153.se' })).isError).toBe(false);
    expect((await call(ms, 'tunnel_delete_cname', { hostname: 'odin-notify.153.se' })).isError).toBe(false);

    const back = await mcpClient(mcpUrl, tokens.consilio!);
    try {
      const resumed = await events(back, seen.nextCursor);
      expect(resumed.events.map((e) => [e.kind, e.project, e.data.hostname])).toEqual([['route.deleted', 'consilio', 'notify.153.se']]);
      expect(resumed.events[0]!.id).toBeGreaterThan(seen.nextCursor);
      // Nothing new since: an empty page and the same cursor.
      expect(await events(back, resumed.nextCursor)).toEqual({ events: [], nextCursor: resumed.nextCursor });
      // The whole history from 0 is what was seen before plus what was missed.
      expect((await readAll(back, 0, 3)).events).toEqual([...seen.events, ...resumed.events]);
    } finally {
      await back.close();
    }
  }, 60_000);
});

describe('broadcast events name nothing of another project', () => {
  it("a broken hand edit is broadcast to every project, but only the meta-supervisor reads the other projects' hostnames", async () => {
    const owner = await mcpClient(mcpUrl, tokens.consilio!);
    try {
      const port = await call<{ port: number }>(owner, 'port_allocate', { purpose: 'broadcast test' });
      const route = await call(owner, 'tunnel_request_cname', { subdomain: 'private-name', targetPort: port.data.port, publishAhead: true });
      expect(route.isError, JSON.stringify(route.data)).toBe(false);
    } finally {
      await owner.close();
    }
    const cursor = (await events(ms, 0, 500)).nextCursor;
    const logsBefore = odin.logs.length;
    const path = env.config.cloudflared.configPath;
    const good = readFileSync(path, 'utf8');
    // A port on the hostname: cloudflared would refuse the file, so the manager reports it and leaves it alone.
    writeFileSync(path, good.replace('hostname: private-name.153.se', 'hostname: private-name.153.se:3000'));
    try {
      const whole = await waitUntil(
        async () => (await events(ms, cursor, 500)).events.find((e) => e.kind === 'ingress.hand_edit_invalid'),
        15_000,
        'the meta-supervisor to see ingress.hand_edit_invalid',
      );
      expect(whole.project).toBe('*');
      expect(JSON.stringify(whole.data)).toContain('private-name.153.se');

      const seen = (await events(odin.client, cursor, 500)).events.find((e) => e.id === whole.id);
      expect(seen, 'odin is told that the file is broken').toBeDefined();
      expect(seen!.data).toMatchObject({ path, issuesCount: expect.any(Number) });
      expect(JSON.stringify(seen)).not.toContain('private-name');
      const pushed = await waitUntil(() => odin.logs.slice(logsBefore).find((log) => log.data.kind === 'ingress.hand_edit_invalid'), 10_000, 'odin to hear it');
      expect(JSON.stringify(pushed)).not.toContain('private-name');
    } finally {
      writeFileSync(path, good);
    }
  }, 60_000);
});
