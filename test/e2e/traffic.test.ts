import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { HostTraffic, TrafficResult } from '../../src/contract/traffic.ts';
import { waitUntil } from '../helpers/cli.ts';
import { call, freePortInRange, sandboxClients, portOf, projectPorts, startTestService, viaEdge } from '../helpers/service.ts';

/**
 * tunnel_get_traffic (issue 24, items 1 and 2) with real parts: the whole service in sandbox mode, a real origin on
 * 127.0.0.1, requests sent through the sandbox edge, which records each one; the Cloudflare API emulator answers the
 * manager's GraphQL Analytics query from those records with the `graphql` reference implementation.
 */

const HOST = 'traffic.153.se';
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

let env: Awaited<ReturnType<typeof startTestService>>;
let consilio: Client;
let odin: Client;
let ms: Client;
let edgeUrl: string;

/** An origin in consilio's range answering 500 on /fail and 200 with a body elsewhere. */
async function failingOrigin(): Promise<Server> {
  const port = await freePortInRange(...projectPorts(env.config, 'consilio', [0.5, 1]));
  const server = createServer((req, res) => {
    const fail = req.url === '/fail';
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(fail ? 'it broke\n' : `hello from the traffic origin, ${'x'.repeat(200)}\n`);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

function graphqlRequests(): number {
  return env.service.sandbox!.emulator.requests().filter((entry) => entry.route === 'POST /graphql').length;
}

async function traffic(client: Client, args: Record<string, unknown>): Promise<TrafficResult> {
  const answer = await call<TrafficResult>(client, 'tunnel_get_traffic', args);
  expect(answer.isError, JSON.stringify(answer.data)).toBe(false);
  return answer.data;
}

beforeAll(async () => {
  env = await startTestService();
  cleanups.push(env.stop);
  edgeUrl = env.service.sandboxInfo!.edgeUrl;
  const clients = await sandboxClients(env.service);
  ({ consilio, odin, ms } = clients);
  cleanups.push(clients.close);
  const port = portOf(await failingOrigin());
  expect((await call(consilio, 'port_allocate', { port, purpose: 'traffic test' })).isError).toBe(false);
  const created = await call(consilio, 'tunnel_request_cname', { subdomain: 'traffic', targetPort: port });
  expect(created.isError, JSON.stringify(created.data)).toBe(false);
}, 60_000);

describe('tunnel_get_traffic in the sandbox: the traffic a project sent, as Cloudflare would count it', () => {
  let mine: HostTraffic;

  it('40 requests through the edge, 10 answered 500, show up as >= 40 requests, >= 10 in 5xx and bytes > 0', async () => {
    for (let index = 0; index < 30; index += 1) expect((await viaEdge(edgeUrl, HOST)).status).toBe(200);
    for (let index = 0; index < 10; index += 1) expect((await viaEdge(edgeUrl, HOST, '/fail')).status).toBe(500);
    const started = Date.now();
    const answer = await waitUntil(
      async () => {
        const read = await traffic(consilio, { hostname: HOST, window: '1h' });
        return (read.hostnames[0]?.requests ?? 0) >= 40 ? read : undefined;
      },
      90_000,
      'the 40 requests to show in tunnel_get_traffic',
      1_000,
    );
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(answer).toMatchObject({ window: '1h', available: true, reason: null, source: 'cloudflare-graphql-analytics' });
    expect(answer.hostnames).toHaveLength(1);
    mine = answer.hostnames[0]!;
    expect(mine).toMatchObject({ hostname: HOST, project: 'consilio', available: true });
    expect(mine.requests).toBeGreaterThanOrEqual(40);
    expect(mine.byStatusClass['5xx']).toBeGreaterThanOrEqual(10);
    expect(mine.byStatusClass['2xx']).toBeGreaterThanOrEqual(30);
    expect(mine.bytes).toBeGreaterThan(0);
    expect(mine.errorShare).toBeCloseTo(mine.byStatusClass['5xx'] / mine.requests);
    expect(mine.topStatusCodes.map((entry) => entry.status)).toEqual(expect.arrayContaining([200, 500]));
    expect(mine.hourly.reduce((sum, hour) => sum + hour.requests, 0)).toBe(mine.requests);
    expect(mine.hourly.reduce((sum, hour) => sum + hour.errors, 0)).toBe(mine.byStatusClass['5xx']);
  }, 120_000);

  it('a second call within the minute is answered from memory: Cloudflare is not asked again', async () => {
    const before = graphqlRequests();
    const again = await traffic(consilio, { hostname: HOST, window: '1h' });
    const all = await traffic(consilio, { window: '1h' });
    expect(graphqlRequests()).toBe(before);
    expect(again.hostnames[0]?.asOf).toBe(mine.asOf);
    // All of consilio's routes: this one, read in the same minute (the seed's routes are not consilio's).
    expect(all.hostnames.map((entry) => entry.hostname)).toContain(HOST);
    expect(all.hostnames.every((entry) => entry.project === 'consilio')).toBe(true);
  }, 30_000);

  it('another project cannot read them; the meta-supervisor can', async () => {
    const refused = await call<{ code: string; fix: string }>(odin, 'tunnel_get_traffic', { hostname: HOST });
    expect(refused.isError).toBe(true);
    expect(refused.data.code).toBe('ROUTE_NOT_OWNED');
    expect(refused.data.fix).toBeTruthy();
    const forbidden = await call<{ code: string }>(odin, 'tunnel_get_traffic', { project: 'consilio' });
    expect(forbidden.data.code).toBe('FORBIDDEN');
    const odinsOwn = await traffic(odin, { window: '1h' });
    expect(odinsOwn.hostnames.map((entry) => entry.hostname)).not.toContain(HOST);
    const everyone = await traffic(ms, { window: '1h' });
    expect(everyone.hostnames.find((entry) => entry.hostname === HOST)?.requests).toBeGreaterThanOrEqual(40);
  }, 30_000);

  it('an unknown route is ROUTE_NOT_FOUND, a window it does not know is refused naming the field', async () => {
    const unknown = await call<{ code: string; fix: string }>(consilio, 'tunnel_get_traffic', { hostname: 'nothing-here.153.se' });
    expect(unknown.data.code).toBe('ROUTE_NOT_FOUND');
    const badWindow = await call<{ code: string; message: string }>(consilio, 'tunnel_get_traffic', { hostname: HOST, window: '2d' });
    expect(badWindow.isError).toBe(true);
    expect(badWindow.data.message).toContain('window');
  }, 30_000);
});
