import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { TunnelContext } from '../../machines/tunnel.machine.ts';
import type { TunnelManager as Service } from '../../src/root/composition-root.ts';
import { waitUntil } from '../helpers/cli.ts';
import { realCloudflaredForTests } from '../helpers/real-cloudflared.ts';
import { keepAliveTraffic } from '../helpers/traffic.ts';
import { call, mcpClient, portOf, projectPorts, startOriginInRange, startTestService, viaEdge } from '../helpers/service.ts';

/**
 * The tunnel's lifecycle with the real cloudflared 2026.3.0 under the whole manager (sandbox mode: the Cloudflare
 * API emulator, the sandbox edge speaking cloudflared's protocol, SQLite, MCP over HTTP): start with four registered
 * connections, probes and metrics read from the real process, a CNAME request end to end, reloads and an operator's
 * restart under continuous traffic with no failed request, and a crash recovered on the backoff schedule.
 */
const binary = realCloudflaredForTests('the tunnel lifecycle on the real cloudflared');

type Snapshot = { value: unknown; context: TunnelContext };
const tunnelOf = (service: Service) => (service.supervisor.actor.getSnapshot().children as unknown as Record<string, { getSnapshot(): Snapshot }>).tunnel!.getSnapshot();

let env: Awaited<ReturnType<typeof startTestService>>;
let ms: Client;
let consilio: Client;
let origin: Server;
let port: number;

/** Keep-alive visitors through this service's edge. */
function traffic(hostname: string) {
  const edge = new URL(env.service.sandboxInfo!.edgeUrl);
  return keepAliveTraffic({ host: edge.hostname, port: Number(edge.port) }, hostname);
}

beforeAll(async () => {
  if (binary === null) return;
  env = await startTestService({
    cloudflared: { metricsAddress: '127.0.0.1:0', command: [binary] },
    health: { probeIntervalSeconds: 1 },
    restart: { startTimeoutSeconds: 30, stopGraceSeconds: 10, backoffSeconds: [2, 4] },
    // cloudflared's own default grace period: nothing the manager does may wait it out.
    reload: { drainGraceSeconds: 30, replicaReadyTimeoutSeconds: 30 },
  });
  const info = env.service.sandboxInfo!;
  ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  origin = await startOriginInRange(...projectPorts(env.config, 'consilio', [0.5, 1]), 'real-cloudflared');
  port = portOf(origin);
  expect((await call(consilio, 'port_allocate', { port, purpose: 'real cloudflared' })).isError).toBe(false);
}, 120_000);

afterAll(async () => {
  if (binary === null) return;
  await ms?.close();
  await consilio?.close();
  await env?.stop();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe.skipIf(binary === null)('the real cloudflared under the manager', () => {
  it('runs the real binary, with four connections registered, probed ok and reported in the status', async () => {
    const info = env.service.sandboxInfo!;
    expect(info.cloudflared).toMatchObject({ kind: 'real', version: '2026.3.0', chosenBy: 'cloudflared.command' });
    await waitUntil(async () => {
      const status = await call<{ state: string; readyConnections: number | null; lastProbe: { result: string } | null }>(ms, 'tunnel_get_status');
      return status.data.state === 'running.up' && status.data.readyConnections === 4 && status.data.lastProbe?.result === 'ok' ? true : undefined;
    }, 30_000, 'the tunnel to be up with 4 connections');
    expect(env.service.sandbox!.edge.connectors()).toEqual([expect.objectContaining({ kind: 'cloudflared', version: '2026.3.0', connections: 4 })]);
  });

  it('publishes a route end to end through the real cloudflared, and its counters move with the traffic', async () => {
    const started = Date.now();
    const created = await call<{ url: string; timings: Record<string, number> }>(consilio, 'tunnel_request_cname', { subdomain: 'real-one', targetPort: port });
    const tookMs = Date.now() - started;
    expect(created.isError, JSON.stringify(created.data)).toBe(false);
    // The replica reload no longer waits for the old process's 30 s grace period (it did: 30.4 s per request).
    expect(tookMs).toBeLessThan(15_000);
    const before = await call<{ totalRequests: number | null }>(ms, 'tunnel_get_metrics');
    for (let i = 0; i < 5; i += 1) expect((await viaEdge(env.service.sandboxInfo!.edgeUrl, 'real-one.153.se')).status).toBe(200);
    const after = await call<{ totalRequests: number | null; responsesByCode: Record<string, number> }>(ms, 'tunnel_get_metrics');
    expect((after.data.totalRequests ?? 0) - (before.data.totalRequests ?? 0)).toBeGreaterThanOrEqual(5);
    expect(after.data.responsesByCode['200']).toBeGreaterThanOrEqual(5);
  });

  it('reloads under continuous traffic with no failed request', async () => {
    const load = traffic('real-one.153.se');
    for (let i = 0; i < 3; i += 1) {
      const created = await call(consilio, 'tunnel_request_cname', { subdomain: `real-reload-${i}`, targetPort: port });
      expect(created.isError, JSON.stringify(created.data)).toBe(false);
      expect((await viaEdge(env.service.sandboxInfo!.edgeUrl, `real-reload-${i}.153.se`)).status).toBe(200);
    }
    const result = await load.stop();
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(50);
  });

  it('restarts on the operator\'s word under traffic with no outage: the new cloudflared serves before the old one stops', async () => {
    const before = tunnelOf(env.service).context.process?.pid;
    const load = traffic('real-one.153.se');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const restarted = await call<{ pid: number | null; state: string }>(ms, 'tunnel_restart', {});
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await load.stop();
    expect(restarted.isError, JSON.stringify(restarted.data)).toBe(false);
    expect(restarted.data.pid).not.toBe(before);
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(20);
  });

  it('a killed cloudflared is replaced by a new one that serves again', async () => {
    const pid = tunnelOf(env.service).context.process!.pid!;
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => {
      const tunnel = tunnelOf(env.service);
      return JSON.stringify(tunnel.value).includes('running') && tunnel.context.process?.pid !== pid ? true : undefined;
    }, 30_000, 'a new cloudflared to run');
    await waitUntil(async () => ((await viaEdge(env.service.sandboxInfo!.edgeUrl, 'real-one.153.se')).status === 200 ? true : undefined), 10_000, 'the route to serve again');
    expect(tunnelOf(env.service).context.restartReason).toBe('process-exited');

    // A second crash in the same streak waits on the backoff schedule (2 s here), then serves again.
    const again = tunnelOf(env.service).context.process!.pid!;
    process.kill(again, 'SIGKILL');
    await waitUntil(() => (tunnelOf(env.service).value === 'backoff' ? true : undefined), 10_000, 'the tunnel to back off');
    expect(tunnelOf(env.service).context.currentDelayMs).toBe(2_000);
    await waitUntil(async () => (tunnelOf(env.service).context.process?.pid !== again && (await viaEdge(env.service.sandboxInfo!.edgeUrl, 'real-one.153.se')).status === 200 ? true : undefined), 20_000, 'the route to serve after the backoff');
  });
});
