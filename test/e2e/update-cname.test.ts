import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { EventRow } from '../../src/store/events-repository.ts';
import { publishBlueGreen } from '../helpers/blue-green.ts';
import { waitUntil } from '../helpers/cli.ts';
import { call, freePortInRange, sandboxClients, portOf, projectPorts, standinFaultFile, startOriginInRange, startTestService, viaEdge } from '../helpers/service.ts';
import { edgeTraffic } from '../helpers/traffic.ts';

/**
 * tunnel_update_cname (issue 24, item 3) and several hostnames on one service (item 4), with real parts: the whole
 * service in sandbox mode, the stand-in cloudflared as a real process behind the sandbox edge, real origins on
 * 127.0.0.1. A switch from port A to port B under continuous traffic through the edge fails no request.
 */

interface RouteRow {
  hostname: string;
  targetPort: number | null;
  target: string | null;
  updatedAt: string;
  createdAt: string;
}
interface Failure {
  code: string;
  message: string;
  fix: string;
  details: Record<string, unknown>;
}

const faults = standinFaultFile('tm-update-cname-');
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  faults.remove();
});

let env: Awaited<ReturnType<typeof startTestService>>;
let consilio: Client;
let odin: Client;
let ms: Client;
let edgeUrl: string;
const events: EventRow[] = [];

async function origin(project: string, name: string): Promise<Server> {
  const server = await startOriginInRange(...projectPorts(env.config, project, [0.5, 1]), name);
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

async function allocate(client: Client, port: number): Promise<void> {
  const allocated = await call(client, 'port_allocate', { port, purpose: 'update-cname test' });
  expect(allocated.isError, JSON.stringify(allocated.data)).toBe(false);
}

async function routesOf(client: Client): Promise<RouteRow[]> {
  const listed = await call<{ routes: RouteRow[] }>(client, 'tunnel_list_cnames', {});
  expect(listed.isError, JSON.stringify(listed.data)).toBe(false);
  return listed.data.routes;
}

async function refused(client: Client, args: Record<string, unknown>, code: string): Promise<Failure> {
  const result = await call<Failure>(client, 'tunnel_update_cname', args);
  expect(result.isError, JSON.stringify(result.data)).toBe(true);
  expect(result.data.code, JSON.stringify(result.data)).toBe(code);
  expect(result.data.message).toBeTruthy();
  expect(result.data.fix).toBeTruthy();
  return result.data;
}

beforeAll(async () => {
  env = await startTestService({ reload: { drainGraceSeconds: 1 } });
  cleanups.push(env.stop);
  edgeUrl = env.service.sandboxInfo!.edgeUrl;
  const clients = await sandboxClients(env.service);
  ({ consilio, odin, ms } = clients);
  cleanups.push(clients.close);
  const unsubscribe = env.service.bus.subscribe((event) => events.push(event));
  cleanups.push(unsubscribe);
}, 60_000);

describe('tunnel_update_cname: blue → green in place', () => {
  const HOST = 'switch.153.se';
  let blue: number;
  let green: number;

  it('moves a route from port A to port B under continuous traffic with 0 failed requests; the next request reaches B', async () => {
    const pair = await publishBlueGreen(env, consilio, { project: 'consilio', subdomain: 'switch' });
    cleanups.push(pair.close);
    ({ blue, green } = pair);
    expect(pair.hostname).toBe(HOST);
    expect((await viaEdge(edgeUrl, HOST)).body).toContain('hello from blue');
    const before = (await routesOf(consilio)).find((route) => route.hostname === HOST)!;

    const edge = { port: Number(new URL(edgeUrl).port) };
    const kept = edgeTraffic(edge, HOST, { clients: 3, keepAlive: true });
    const fresh = edgeTraffic(edge, HOST, { clients: 2, keepAlive: false });
    await waitUntil(() => (kept.requests > 20 && fresh.requests > 20) || undefined, 20_000, 'traffic to flow', 20);
    const moved = await call<{ targetPort: number; target: string; previous: { targetPort: number }; commit: string | null }>(consilio, 'tunnel_update_cname', {
      hostname: HOST,
      targetPort: green,
    });
    const next = await viaEdge(edgeUrl, HOST);
    // Some more traffic after the switch, on both kinds of connection.
    const [keptAt, freshAt] = [kept.requests, fresh.requests];
    await waitUntil(() => (kept.requests > keptAt + 20 && fresh.requests > freshAt + 20) || undefined, 20_000, 'traffic after the switch', 20);
    const [keptResult, freshResult] = await Promise.all([kept.stop(), fresh.stop()]);

    expect(moved.isError, JSON.stringify(moved.data)).toBe(false);
    expect(moved.data).toMatchObject({ targetPort: green, previous: { targetPort: blue } });
    expect(moved.data.target).toContain(String(green));
    expect(next).toMatchObject({ status: 200, body: expect.stringContaining('hello from green') });
    expect(keptResult.failures).toEqual([]);
    expect(freshResult.failures).toEqual([]);
    expect(keptResult.requests + freshResult.requests).toBeGreaterThan(80);

    const after = (await routesOf(consilio)).find((route) => route.hostname === HOST)!;
    expect(after).toMatchObject({ targetPort: green, target: moved.data.target, createdAt: before.createdAt });
    expect(Date.parse(after.updatedAt)).toBeGreaterThan(Date.parse(before.updatedAt));
    const updated = events.filter((event) => event.kind === 'route.updated' && event.data.hostname === HOST);
    expect(updated).toHaveLength(1);
    expect(updated[0]).toMatchObject({ project: 'consilio', data: { from: { targetPort: blue }, to: { targetPort: green } } });
    const audit = await call<{ entries: { action: string; target: string; outcome: string; principal: string }[] }>(ms, 'tunnel_get_audit', { limit: 50 });
    expect(audit.data.entries).toContainEqual(expect.objectContaining({ action: 'tunnel_update_cname', target: HOST, outcome: 'ok', principal: 'consilio' }));
    // Only the tool's own call is audited for this change: nothing deleted or recreated its DNS record.
    expect(events.filter((event) => event.kind === 'route.created' && event.data.hostname === HOST)).toHaveLength(1);
  }, 90_000);

  it('refuses another project (ROUTE_NOT_OWNED) and a port the route\'s project does not hold (PORT_NOT_OWNED); nothing changes', async () => {
    const odinPort = portOf(await origin('odin', 'odin-service'));
    await allocate(odin, odinPort);
    const notOwned = await refused(odin, { hostname: HOST, targetPort: odinPort }, 'ROUTE_NOT_OWNED');
    expect(notOwned.details).toMatchObject({ hostname: HOST, owner: 'consilio' });
    const notHeld = await refused(consilio, { hostname: HOST, targetPort: odinPort }, 'PORT_NOT_OWNED');
    expect(notHeld.fix).toContain('port_allocate');
    // The meta-supervisor moves any route, but only to a port its project holds.
    const msRefused = await refused(ms, { hostname: HOST, targetPort: odinPort }, 'PORT_NOT_OWNED');
    // Worded for the one who moves another project's route: the owner's ports, not "your range".
    expect(msRefused.fix).toContain('port_list { "project": "consilio" }');
    expect(msRefused.fix).not.toContain('your range');
    expect((await routesOf(consilio)).find((route) => route.hostname === HOST)).toMatchObject({ targetPort: green });
    expect((await viaEdge(edgeUrl, HOST)).body).toContain('hello from green');
  }, 30_000);

  it('refuses a new port nothing answers on unless publishAhead, an unknown route, and a call that changes nothing', async () => {
    const silent = await freePortInRange(...projectPorts(env.config, 'consilio', [0.5, 1]));
    await allocate(consilio, silent);
    const notAnswering = await refused(consilio, { hostname: HOST, targetPort: silent }, 'TARGET_NOT_ANSWERING');
    expect(notAnswering.message).toContain('Nothing was changed');
    expect(notAnswering.fix).toContain('publishAhead');
    expect((await routesOf(consilio)).find((route) => route.hostname === HOST)).toMatchObject({ targetPort: green });
    expect((await viaEdge(edgeUrl, HOST)).body).toContain('hello from green');

    const unknown = await refused(consilio, { hostname: 'no-such-route.153.se', targetPort: green }, 'ROUTE_NOT_FOUND');
    expect(unknown.fix).toContain('tunnel_list_cnames');
    const nothing = await refused(consilio, { hostname: HOST, targetPort: green }, 'NOTHING_TO_CHANGE');
    expect(nothing.fix).toContain('targetPort');
    await refused(consilio, { hostname: HOST }, 'NOTHING_TO_CHANGE');
    expect(events.filter((event) => event.kind === 'route.updated' && event.data.hostname === HOST)).toHaveLength(1);
    // Given back: nothing listens there, so a later origin of this file may draw the same port.
    expect((await call(consilio, 'port_release', { port: silent })).isError).toBe(false);
  }, 30_000);

  it('changes only the origin settings in place, and {} puts the defaults back', async () => {
    const changed = await call<{ targetPort: number; originRequest: Record<string, unknown> | null; previous: { targetPort: number } }>(consilio, 'tunnel_update_cname', {
      hostname: HOST,
      originRequest: { httpHostHeader: 'green.internal' },
    });
    expect(changed.isError, JSON.stringify(changed.data)).toBe(false);
    expect(changed.data).toMatchObject({ targetPort: green, previous: { targetPort: green }, originRequest: { httpHostHeader: 'green.internal' } });
    // cloudflared now sends the origin that Host header: the origin echoes it.
    expect((await viaEdge(edgeUrl, HOST)).body).toContain('hello from green (green.internal)');
    await refused(consilio, { hostname: HOST, originRequest: { httpHostHeader: 'green.internal' } }, 'NOTHING_TO_CHANGE');
    const reset = await call(consilio, 'tunnel_update_cname', { hostname: HOST, originRequest: {} });
    expect(reset.isError, JSON.stringify(reset.data)).toBe(false);
    expect(reset.data).toMatchObject({ originRequest: null });
    expect((await viaEdge(edgeUrl, HOST)).body).toContain(`hello from green (${HOST})`);
  }, 30_000);

  it('a reload cloudflared refuses puts the old target back in the ledger and in service, and says so', async () => {
    writeFileSync(faults.path, 'refuse-start\n');
    let result: Awaited<ReturnType<typeof call<Failure>>>;
    try {
      result = await call<Failure>(consilio, 'tunnel_update_cname', { hostname: HOST, targetPort: blue });
    } finally {
      writeFileSync(faults.path, '');
    }
    expect(result.isError, JSON.stringify(result.data)).toBe(true);
    expect(result.data.code).toBe('RELOAD_FAILED');
    expect(result.data.fix).toBeTruthy();
    expect(result.data.message).toContain('was not moved');
    expect(result.data.details).toMatchObject({ compensated: true, hostname: HOST });
    expect(env.service.backend.findRoute(HOST)).toMatchObject({ targetPort: green, status: 'active' });
    expect((await viaEdge(edgeUrl, HOST))).toMatchObject({ status: 200, body: expect.stringContaining('hello from green') });
    // Afterwards the same move works.
    const moved = await call(consilio, 'tunnel_update_cname', { hostname: HOST, targetPort: blue });
    expect(moved.isError, JSON.stringify(moved.data)).toBe(false);
    expect((await viaEdge(edgeUrl, HOST)).body).toContain('hello from blue');
  }, 60_000);
});

describe('two moves of one route at once', () => {
  it('one moves it, the other is refused with ROUTE_BUSY and changes nothing', async () => {
    const first = portOf(await origin('consilio', 'first'));
    const second = portOf(await origin('consilio', 'second'));
    const third = portOf(await origin('consilio', 'third'));
    for (const port of [first, second, third]) await allocate(consilio, port);
    const created = await call(consilio, 'tunnel_request_cname', { subdomain: 'race', targetPort: first });
    expect(created.isError, JSON.stringify(created.data)).toBe(false);
    const [a, b] = await Promise.all([
      call<Failure & { targetPort: number }>(consilio, 'tunnel_update_cname', { hostname: 'race.153.se', targetPort: second }),
      call<Failure & { targetPort: number }>(ms, 'tunnel_update_cname', { hostname: 'race.153.se', targetPort: third }),
    ]);
    const moved = [a, b].filter((answer) => !answer.isError);
    const busy = [a, b].filter((answer) => answer.isError);
    expect(moved).toHaveLength(1);
    expect(busy.map((answer) => answer.data.code)).toEqual(['ROUTE_BUSY']);
    expect(busy[0]?.data.fix).toBeTruthy();
    const winner = moved[0]!.data.targetPort;
    expect(env.service.backend.findRoute('race.153.se')).toMatchObject({ targetPort: winner, status: 'active' });
    expect((await viaEdge(edgeUrl, 'race.153.se')).body).toContain(`hello from ${winner === second ? 'second' : 'third'}`);
  }, 60_000);
});

describe('several hostnames on one service (blue-green by name)', () => {
  it('serves two hostnames of one project on the same port, lists them together, and deleting one leaves the other serving', async () => {
    const port = portOf(await origin('consilio', 'shared'));
    await allocate(consilio, port);
    for (const subdomain of ['twin-a', 'twin-b']) {
      const created = await call(consilio, 'tunnel_request_cname', { subdomain, targetPort: port });
      expect(created.isError, JSON.stringify(created.data)).toBe(false);
    }
    for (const hostname of ['twin-a.153.se', 'twin-b.153.se']) {
      expect(await viaEdge(edgeUrl, hostname)).toMatchObject({ status: 200, body: expect.stringContaining(`hello from shared (${hostname})`) });
    }
    const onPort = (await routesOf(consilio)).filter((route) => route.targetPort === port);
    expect(onPort.map((route) => route.hostname)).toEqual(['twin-a.153.se', 'twin-b.153.se']);
    expect(new Set(onPort.map((route) => route.target)).size).toBe(1);

    const deleted = await call(consilio, 'tunnel_delete_cname', { hostname: 'twin-a.153.se' });
    expect(deleted.isError, JSON.stringify(deleted.data)).toBe(false);
    expect((await viaEdge(edgeUrl, 'twin-a.153.se')).status).not.toBe(200);
    expect(await viaEdge(edgeUrl, 'twin-b.153.se')).toMatchObject({ status: 200, body: expect.stringContaining('hello from shared (twin-b.153.se)') });
    expect((await routesOf(consilio)).filter((route) => route.targetPort === port).map((route) => route.hostname)).toEqual(['twin-b.153.se']);
    // The port still has a route: it cannot be released from under it.
    const release = await call<Failure>(consilio, 'port_release', { port });
    expect(release.isError).toBe(true);
  }, 60_000);
});
