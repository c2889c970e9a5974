/**
 * The uptime budgets on the real cloudflared 2026.3.0 (docs/design.md, Budgets), through the sandbox edge that speaks
 * its protocol:
 *
 * - reload under traffic: 10 replica reloads while 4 keep-alive clients send requests through the edge (at least
 *   5,000 in all): 0 failed;
 * - a CNAME request end to end (tunnel_request_cname over MCP: DNS record, rule, reload with the new replica's
 *   registration, ready): p50 < 1.5 s;
 * - cloudflared killed with SIGKILL → a new process serving the route through the edge: < 5 s;
 * - tunnel_restart under traffic: the outage (first to last failed request) < 1 s, aiming at 0.
 *
 * The whole manager runs in this process in sandbox mode (startTestService) with `cloudflared.command` the real
 * binary (TM_CLOUDFLARED or PATH); the reload figures use the spawn driver and reloadWithReplica directly, as the
 * stand-in's reload benchmark does.
 *
 *   node --import tsx test/bench/real-cloudflared.ts [--write]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { TunnelContext } from '../../machines/tunnel.machine.ts';
import { reloadWithReplica, type ReloadResult } from '../../src/cloudflared/replica-reload.ts';
import { SpawnDriver } from '../../src/cloudflared/drivers/spawn-driver.ts';
import { startSandboxEdge, type SandboxEdge } from '../../src/sandbox/edge/edge.ts';
import { waitUntil } from '../helpers/cli.ts';
import { REAL_CLOUDFLARED } from '../helpers/real-cloudflared.ts';
import { keepAliveTraffic } from '../helpers/traffic.ts';
import { call, mcpClient, portOf, projectPorts, startOriginInRange, startTestService, viaEdge } from '../helpers/service.ts';
import { TUNNEL_ID, cloudflaredPidsFor, freePort, startOrigin, tempDir, waitReady, writeTunnelConfig } from '../helpers/standin-cloudflared.ts';
import { isMain, machineLine, spreadOf, verdict, writeDocSection, type Spread } from './support.ts';

export interface RealCloudflaredFigures {
  version: string;
  reload: { reloads: number; requests: number; failed: number; failures: string[]; requestsPerSecond: number; durationMs: Spread; strategies: Record<string, number> };
  cname: { requests: number; totalMs: Spread; reloadMs: Spread };
  crash: { kills: number; servingAgainMs: Spread };
  restart: { restarts: number; requests: number; failed: number; outageMs: number[] };
  pass: boolean;
}

/** 10 replica reloads of the real cloudflared (spawn driver) under traffic, until at least `minRequests` were sent. */
async function reloadUnderTraffic(binary: string, reloads: number, minRequests: number): Promise<RealCloudflaredFigures['reload']> {
  const dir = tempDir('bench-real-reload');
  const edge: SandboxEdge = await startSandboxEdge({ listen: '127.0.0.1:0', tunnelListen: '127.0.0.1:0', caDir: dir.path });
  const origin = await startOrigin('bench');
  const credentials = join(dir.path, 'credentials.json');
  writeFileSync(credentials, JSON.stringify({ AccountTag: 'bench', TunnelSecret: Buffer.alloc(32, 1).toString('base64'), TunnelID: TUNNEL_ID }));
  const driver = new SpawnDriver({
    command: [binary],
    configPath: writeTunnelConfig(join(dir.path, 'config.yml'), [{ hostname: 'app.example.com', service: `http://127.0.0.1:${origin.port}` }, { service: 'http_status:404' }]),
    metricsAddress: `127.0.0.1:${await freePort()}`,
    replicaMetricsAddresses: [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`],
    tunnelId: TUNNEL_ID,
    flags: ['--grace-period', '30s', '--no-autoupdate', ...Array.from({ length: 4 }, () => ['--edge', edge.tunnelAddress as string]).flat(), '--cacert', edge.caPath as string, '--protocol', 'http2', '--credentials-file', credentials],
    pidfile: join(dir.path, 'cloudflared.pid'),
  });
  try {
    await driver.start();
    await waitReady(driver.metricsAddress(), 4, 30_000);
    const load = keepAliveTraffic({ port: edge.port }, 'app.example.com');
    const started = performance.now();
    const results: ReloadResult[] = [];
    for (let i = 0; i < reloads; i += 1) {
      results.push(await reloadWithReplica({ driver, readyTimeoutMs: 30_000, drainGraceMs: 35_000 }));
      // Spread the reloads over the traffic: the last one must still be under load when the minimum is reached.
      const share = Math.ceil((minRequests * (i + 1)) / reloads);
      await waitUntil(() => (load.requests >= share ? true : undefined), 120_000, `${share} requests`, 10);
    }
    await load.stop();
    const elapsed = (performance.now() - started) / 1000;
    const strategies: Record<string, number> = {};
    for (const result of results) strategies[result.strategy] = (strategies[result.strategy] ?? 0) + 1;
    return {
      reloads,
      requests: load.requests,
      failed: load.failures.length,
      failures: load.failures.slice(0, 10).map((failure) => (failure.status === 0 ? 'connection error' : `HTTP ${failure.status}`)),
      requestsPerSecond: Math.round(load.requests / elapsed),
      durationMs: spreadOf(results.map((result) => result.durationMs)),
      strategies,
    };
  } finally {
    await driver.stop(10_000);
    // Old replicas still draining end with the edge's connections; any left is stopped here.
    for (const pid of cloudflaredPidsFor(join(dir.path, 'config.yml'))) process.kill(pid, 'SIGKILL');
    await edge.close();
    await origin.close();
    dir.remove();
  }
}

type TunnelSnapshot = { value: unknown; context: TunnelContext };

export async function runRealCloudflaredBenchmark(options: { binary?: string; reloads?: number; cnames?: number; kills?: number; restarts?: number } = {}): Promise<RealCloudflaredFigures> {
  const binary = options.binary ?? REAL_CLOUDFLARED;
  if (binary === null || binary === undefined) throw new Error('no real cloudflared: set TM_CLOUDFLARED=/path/to/cloudflared or put cloudflared on PATH');
  const reload = await reloadUnderTraffic(binary, options.reloads ?? 10, 5_000);

  const env = await startTestService({
    cloudflared: { metricsAddress: '127.0.0.1:0', command: [binary] },
    health: { probeIntervalSeconds: 30 },
    // Every kill is the first failure of a streak (a stable second resets it): restarted at once.
    restart: { startTimeoutSeconds: 30, stopGraceSeconds: 10, resetAfterSeconds: 1 },
    reload: { drainGraceSeconds: 30, replicaReadyTimeoutSeconds: 30 },
  });
  const info = env.service.sandboxInfo!;
  const tunnel = () => (env.service.supervisor.actor.getSnapshot().children as unknown as Record<string, { getSnapshot(): TunnelSnapshot }>).tunnel!.getSnapshot();
  const ms: Client = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  const consilio: Client = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  const origin = await startOriginInRange(...projectPorts(env.config, 'consilio', [0.5, 1]), 'bench-real');
  const edgePort = Number(new URL(info.edgeUrl).port);
  try {
    await call(consilio, 'port_allocate', { port: portOf(origin), purpose: 'bench' });
    await waitUntil(() => (JSON.stringify(tunnel().value).includes('running') ? true : undefined), 60_000, 'the tunnel to run');

    // CNAME requests end to end, one after another.
    const totals: number[] = [];
    const reloads: number[] = [];
    for (let i = 0; i < (options.cnames ?? 10); i += 1) {
      const started = performance.now();
      const created = await call<{ timings?: { step: string; ms: number }[] }>(consilio, 'tunnel_request_cname', { subdomain: `bench-real-${i}`, targetPort: portOf(origin) });
      totals.push(performance.now() - started);
      if (created.isError) throw new Error(`tunnel_request_cname failed: ${JSON.stringify(created.data)}`);
      // The saga's steps that wait for cloudflared: the ingress cycle (write, reload with the new replica) and ready.
      reloads.push((created.data.timings ?? []).filter((timing) => timing.step === 'ingress' || timing.step === 'tunnelReady').reduce((sum, timing) => sum + timing.ms, 0));
      if ((await viaEdge(info.edgeUrl, `bench-real-${i}.153.se`)).status !== 200) throw new Error(`bench-real-${i}.153.se does not serve`);
    }

    // SIGKILL → a new process serving the route again.
    const serving: number[] = [];
    for (let i = 0; i < (options.kills ?? 5); i += 1) {
      // Running and stable (a second here): this kill is the first failure of a streak.
      const pid = await waitUntil(() => (JSON.stringify(tunnel().value).includes('running') ? (tunnel().context.process?.pid ?? undefined) : undefined), 60_000, 'the tunnel to run');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const killed = performance.now();
      process.kill(pid, 'SIGKILL');
      // Serving again: the edge answers for the route (with the old process gone, only a new one can).
      await waitUntil(async () => ((await viaEdge(info.edgeUrl, 'bench-real-0.153.se')).status === 200 ? true : undefined), 30_000, 'the route to serve again', 20);
      serving.push(performance.now() - killed);
    }

    // tunnel_restart under traffic.
    const outages: number[] = [];
    let restartRequests = 0;
    let restartFailed = 0;
    for (let i = 0; i < (options.restarts ?? 5); i += 1) {
      await waitUntil(() => (JSON.stringify(tunnel().value).includes('running') ? true : undefined), 60_000, 'the tunnel to run');
      const load = keepAliveTraffic({ port: edgePort }, 'bench-real-0.153.se');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const restarted = await call(ms, 'tunnel_restart', {});
      if (restarted.isError) throw new Error(`tunnel_restart failed: ${JSON.stringify(restarted.data)}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await load.stop();
      restartRequests += load.requests;
      restartFailed += load.failures.length;
      const at = load.failures.map((failure) => failure.at);
      outages.push(at.length === 0 ? 0 : Math.round(Math.max(...at) - Math.min(...at)));
    }
    const figures: RealCloudflaredFigures = {
      version: info.cloudflared.version,
      reload,
      cname: { requests: totals.length, totalMs: spreadOf(totals), reloadMs: spreadOf(reloads) },
      crash: { kills: serving.length, servingAgainMs: spreadOf(serving) },
      restart: { restarts: outages.length, requests: restartRequests, failed: restartFailed, outageMs: outages },
      pass: false,
    };
    figures.pass =
      reload.failed === 0 && reload.requests >= 5_000 && figures.cname.totalMs.p50 < 1_500 && figures.crash.servingAgainMs.max < 5_000 && Math.max(...outages) < 1_000;
    return figures;
  } finally {
    await ms.close();
    await consilio.close();
    await env.stop();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  }
}

export function renderRealCloudflared(figures: RealCloudflaredFigures): string {
  const spread = (s: Spread): string => `${Math.round(s.min)} / ${Math.round(s.p50)} / ${Math.round(s.max)}`;
  return [
    `Scenario (\`node --import tsx test/bench/real-cloudflared.ts --write\`, also \`npm run bench\`): the **real** cloudflared`,
    `${figures.version} (not the stand-in) behind the sandbox edge, which speaks its protocol (TLS, HTTP/2, the registration`,
    'RPC). Reloads: the spawn driver and `reloadWithReplica`, 10 reloads while 4 keep-alive clients send requests through',
    'the edge back to back. The rest: the whole manager in sandbox mode with `cloudflared.command` the real binary, calls over',
    'MCP; each SIGKILL is the first failure of a streak (restarted at once); each `tunnel_restart` runs under 4 keep-alive',
    'clients.',
    '',
    '| figure | value | budget | verdict |',
    '| --- | --- | --- | --- |',
    `| reload under traffic: failed requests / requests sent (${figures.reload.reloads} reloads: ${Object.entries(figures.reload.strategies).map(([name, count]) => `${count} × ${name}`).join(', ')}) | ${figures.reload.failed} / ${figures.reload.requests} (${figures.reload.requestsPerSecond}/s) | 0 of ≥ 5,000 | ${verdict(figures.reload.failed === 0 && figures.reload.requests >= 5_000)} |`,
    `| reload duration (replica started → registered → ready → live), ms, min / p50 / max | ${spread(figures.reload.durationMs)} | | |`,
    `| CNAME request end to end, ms, min / p50 / max (${figures.cname.requests} requests) | ${spread(figures.cname.totalMs)} | p50 < 1,500 | ${verdict(figures.cname.totalMs.p50 < 1_500)} |`,
    `| of which the saga waited for cloudflared (ingress cycle with the replica reload, then ready), ms, min / p50 / max | ${spread(figures.cname.reloadMs)} | | |`,
    `| cloudflared SIGKILLed → a new one serving the route, ms, min / p50 / max (${figures.crash.kills} kills) | ${spread(figures.crash.servingAgainMs)} | < 5,000 | ${verdict(figures.crash.servingAgainMs.max < 5_000)} |`,
    `| \`tunnel_restart\` under traffic: failed requests / requests (${figures.restart.restarts} restarts) | ${figures.restart.failed} / ${figures.restart.requests} | | |`,
    `| \`tunnel_restart\` outage (first to last failed request), ms, each restart | ${figures.restart.outageMs.join(', ')} | < 1,000, aiming at 0 | ${verdict(Math.max(...figures.restart.outageMs) < 1_000)} |`,
    '',
    machineLine(),
    'Before the edge spoke cloudflared\'s protocol the real binary was measured by hand through a throwaway edge: 30.4 s per',
    'CNAME request (the reload waited for the old process\'s whole 30 s grace period) and a 10 s outage per `tunnel_restart`',
    '(stop, wait, SIGKILL, then start).',
    '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const figures = await runRealCloudflaredBenchmark();
  console.log(JSON.stringify(figures, null, 2));
  if (process.argv.includes('--write')) console.log(`wrote ${writeDocSection('The real cloudflared: reloads, CNAME requests, crashes and restarts', renderRealCloudflared(figures))}`);
  process.exit(figures.pass ? 0 : 1);
}
