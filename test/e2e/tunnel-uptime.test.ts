import http, { type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { TunnelContext } from '../../machines/tunnel.machine.ts';
import { createLogger } from '../../src/app/config/logger.ts';
import { startTunnelManager as startService, type TunnelManager as Service } from '../../src/root/composition-root.ts';
import { waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, portOf, settled, startOriginInRange, startTestService, viaEdge, projectPorts } from '../helpers/service.ts';

/**
 * Restarts, reloads and shutdowns that must never take the tunnel down for longer than they need, with real parts:
 * the whole service in sandbox mode, the stand-in cloudflared as a real process (its fault file makes one start slow).
 */

const faultDir = mkdtempSync(join(tmpdir(), 'tm-uptime-faults-'));
const faultFile = join(faultDir, 'standin-faults');
// The stand-in inherits this process's environment when the service spawns it (and every replica).
process.env.TM_STANDIN_FAULT_FILE = faultFile;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(faultDir, { recursive: true, force: true });
});

type Snapshot = { value: unknown; context: TunnelContext };
const tunnelOf = (service: Service) =>
  (service.supervisor.actor.getSnapshot().children as unknown as Record<string, { getSnapshot(): Snapshot }>).tunnel!.getSnapshot();

describe('tunnel_restart while a reload is serving a route request', () => {
  it('answers the request, and later requests do not hang', async () => {
    const env = await startTestService({ reload: { drainGraceSeconds: 1, replicaReadyTimeoutSeconds: 20 } });
    cleanups.push(env.stop);
    const info = env.service.sandboxInfo!;
    const consilio: Client = await mcpClient(info.mcpUrl, info.tokens.consilio!);
    const ms: Client = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
    cleanups.push(() => consilio.close(), () => ms.close());
    const origin: Server = await startOriginInRange(...projectPorts(env.config, 'consilio'), 'uptime');
    cleanups.push(() => new Promise<void>((resolve) => origin.close(() => resolve())));
    const port = portOf(origin);
    expect((await call(consilio, 'port_allocate', { port, purpose: 'uptime test' })).isError).toBe(false);

    // The next replica takes 6 s to become ready: the tunnel actor sits in `reloading` meanwhile.
    writeFileSync(faultFile, 'slow-start 6\n');
    const first = call(consilio, 'tunnel_request_cname', { subdomain: 'during-restart', targetPort: port });
    await waitUntil(() => tunnelOf(env.service).value === 'reloading' || undefined, 20_000, 'the tunnel actor to be reloading', 20);
    writeFileSync(faultFile, '');
    const restart = await call(ms, 'tunnel_restart', {});
    expect(restart.isError, JSON.stringify(restart.data)).toBe(false);

    // Before the fix the request never answered, and the ingress actor never took another change.
    const answered = await Promise.race([first, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 25_000))]);
    expect(answered).not.toBe('hung');
    expect((answered as { isError: boolean }).isError, JSON.stringify((answered as { data: unknown }).data)).toBe(false);
    await waitUntil(async () => (await viaEdge(info.edgeUrl, 'during-restart.153.se')).status === 200 || undefined, 20_000, 'the route to serve');

    const second = await call(consilio, 'tunnel_request_cname', { subdomain: 'after-restart', targetPort: port });
    expect(second.isError, JSON.stringify(second.data)).toBe(false);
    expect((await viaEdge(info.edgeUrl, 'after-restart.153.se')).status).toBe(200);
  });
});

describe('a clean restart of the manager', () => {
  it('starts cloudflared again at once: a stop it caused is not a crash', async () => {
    const env = await startTestService({ restart: { startTimeoutSeconds: 20, stopGraceSeconds: 5, backoffSeconds: [30, 60] } });
    const { config } = env;
    // One real crash first: the failure streak is 1 (a second failure within the streak would back off 30 s).
    const crashedPid = tunnelOf(env.service).context.process!.pid!;
    process.kill(crashedPid, 'SIGKILL');
    await waitUntil(() => {
      const tunnel = tunnelOf(env.service);
      return tunnel.context.failureStreak === 1 && tunnel.context.process?.pid !== crashedPid && JSON.stringify(tunnel.value).includes('running') ? true : undefined;
    }, 20_000, 'the tunnel to restart after the crash');

    await env.service.stop();
    const stoppedAt = Date.now();
    const again = await startService(config, { logger: createLogger({ level: process.env.TM_TEST_LOG ?? 'silent' }), mcpListen: '127.0.0.1:0', edgeListen: '127.0.0.1:0' });
    cleanups.push(async () => {
      await again.stop();
      rmSync(env.dataDir, { recursive: true, force: true });
    });
    await settled(again, 20_000);
    const tunnel = tunnelOf(again);
    // Up again within seconds, not after the 30 s backoff step the old streak would have reached.
    expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    expect(tunnel.context.currentDelayMs).toBe(0);
    // The real crash still counts; the shutdown's stop does not.
    expect(tunnel.context.failureStreak).toBe(1);
    expect((await viaEdge(again.sandboxInfo!.edgeUrl, 'chat.153.se')).status).not.toBe(530);
  });
});

describe('a new route on a keep-alive connection opened before it went live', () => {
  it('answers from the first request after tunnel_request_cname returns: no old replica still serves the old rules', async () => {
    // Issue 28: a keep-alive visitor got 404 (the old rules) for a while after the request answered, on the old edge.
    const env = await startTestService();
    cleanups.push(env.stop);
    const info = env.service.sandboxInfo!;
    const consilio: Client = await mcpClient(info.mcpUrl, info.tokens.consilio!);
    cleanups.push(() => consilio.close());
    const origin: Server = await startOriginInRange(...projectPorts(env.config, 'consilio', [0.5, 1]), 'keep-alive');
    cleanups.push(() => new Promise<void>((resolve) => origin.close(() => resolve())));
    expect((await call(consilio, 'port_allocate', { port: portOf(origin), purpose: 'keep-alive' })).isError).toBe(false);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const edge = new URL(info.edgeUrl);
    const get = () =>
      new Promise<number>((resolve) => {
        http.get({ host: edge.hostname, port: edge.port, path: '/', headers: { host: 'keepalive.153.se' }, agent }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        }).on('error', () => resolve(0));
      });
    expect(await get()).toBe(404);
    const created = await call(consilio, 'tunnel_request_cname', { subdomain: 'keepalive', targetPort: portOf(origin) });
    expect(created.isError, JSON.stringify(created.data)).toBe(false);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1) statuses.push(await get());
    expect(statuses).toEqual(Array(8).fill(200));
  });
});

describe('probes while the tunnel is reloaded more often than it is probed', () => {
  it('keeps probing on its own schedule: reloads every ~1 s do not postpone the 2 s probe forever', async () => {
    // Issue 27: each reload started the probe timer again; lastProbe stayed null for 71 s with reloads every 30 s.
    const env = await startTestService({ health: { probeIntervalSeconds: 2 }, reload: { drainGraceSeconds: 1 } });
    cleanups.push(env.stop);
    const tunnel = (env.service.supervisor.actor.getSnapshot().children as unknown as Record<string, { send(event: unknown): void; getSnapshot(): Snapshot }>).tunnel!;
    const started = Date.now();
    const probesBefore = tunnel.getSnapshot().context.lastProbe?.at ?? 0;
    const seen = new Set<number>();
    let reloads = 0;
    while (Date.now() - started < 9_000) {
      tunnel.send({ type: 'RELOAD', requestId: `probe-cadence-${reloads}` });
      reloads += 1;
      await waitUntil(() => (JSON.stringify(tunnel.getSnapshot().value).includes('running') ? true : undefined), 20_000, 'the reload to finish', 20);
      const at = tunnel.getSnapshot().context.lastProbe?.at;
      if (at !== undefined && at > probesBefore) seen.add(at);
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
    expect(reloads).toBeGreaterThanOrEqual(5);
    // Every 2 s over ~9 s: at least two probes, whatever the reloads did.
    expect(seen.size).toBeGreaterThanOrEqual(2);
  });
});
