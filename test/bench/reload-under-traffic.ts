/**
 * Reload without downtime, measured: a client sends requests continuously through the sandbox edge while
 * the tunnel (stand-in cloudflared, spawn driver) is reloaded N times with the replica strategy.
 * Reports failed requests (target 0), how long the old replica took to unregister, and the reload duration.
 *
 *   node --import tsx test/bench/reload-under-traffic.ts [--reloads 10] [--write]
 *
 * `--write` replaces the "Reload under traffic" section of docs/performance.md with the figures.
 * test/bench/reload.bench.ts runs the same scenario under `npm run bench`.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import os from 'node:os';
import { reloadWithReplica, type ReloadResult } from '../../src/cloudflared/replica-reload.ts';
import { SpawnDriver } from '../../src/cloudflared/drivers/spawn-driver.ts';
import { startSandboxEdge } from '../../src/sandbox/edge/edge.ts';
import { writeDocSection } from './support.ts';
import { REPO_ROOT, STANDIN_COMMAND, TUNNEL_ID, freePort, startOrigin, tempDir, waitReady, writeTunnelConfig } from '../helpers/standin-cloudflared.ts';

export interface ReloadBenchFigures {
  reloads: number;
  requests: number;
  failed: number;
  failures: string[];
  requestsPerSecond: number;
  overlapMs: { min: number; p50: number; max: number };
  durationMs: { min: number; p50: number; max: number };
  strategies: Record<string, number>;
}

function spread(values: number[]): { min: number; p50: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0] ?? 0, p50: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0, max: sorted[sorted.length - 1] ?? 0 };
}

export async function runReloadBenchmark(options: { reloads?: number; clients?: number } = {}): Promise<ReloadBenchFigures> {
  const reloads = options.reloads ?? 10;
  const clients = options.clients ?? 4;
  const dir = tempDir('bench-reload');
  const edge = await startSandboxEdge({ listen: '127.0.0.1:0' });
  const origin = await startOrigin('bench');
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const driver = new SpawnDriver({
    command: STANDIN_COMMAND,
    configPath: writeTunnelConfig(join(dir.path, 'config.yml'), [
      { hostname: 'app.example.com', service: `http://127.0.0.1:${origin.port}` },
      { service: 'http_status:404' },
    ]),
    metricsAddress: `127.0.0.1:${await freePort()}`,
    replicaMetricsAddresses: [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`],
    tunnelId: TUNNEL_ID,
    flags: ['--grace-period', '5s'],
    pidfile: join(dir.path, 'cloudflared.pid'),
    cwd: REPO_ROOT,
    env: { ...process.env, TM_STANDIN_EDGE: edge.address },
  });
  let requests = 0;
  const failures: string[] = [];
  let sending = true;
  const send = (): Promise<void> =>
    new Promise((resolve) => {
      const request = http.request({ host: '127.0.0.1', port: edge.port, path: '/', headers: { host: 'app.example.com' }, agent }, (response) => {
        response.resume();
        response.on('end', () => {
          requests += 1;
          if (response.statusCode !== 200) failures.push(`HTTP ${response.statusCode}`);
          resolve();
        });
      });
      request.on('error', (error) => {
        requests += 1;
        failures.push(error.message);
        resolve();
      });
      request.end();
    });
  try {
    await driver.start();
    await waitReady(driver.metricsAddress());
    const started = Date.now();
    const traffic = Array.from({ length: clients }, async () => {
      while (sending) await send();
    });
    const results: ReloadResult[] = [];
    for (let i = 0; i < reloads; i += 1) {
      results.push(await reloadWithReplica({ driver, readyTimeoutMs: 15_000, drainGraceMs: 10_000 }));
    }
    sending = false;
    await Promise.all(traffic);
    const elapsed = (Date.now() - started) / 1000;
    const strategies: Record<string, number> = {};
    for (const result of results) strategies[result.strategy] = (strategies[result.strategy] ?? 0) + 1;
    return {
      reloads,
      requests,
      failed: failures.length,
      failures: failures.slice(0, 10),
      requestsPerSecond: Math.round(requests / elapsed),
      overlapMs: spread(results.map((result) => result.overlapMs)),
      durationMs: spread(results.map((result) => result.durationMs)),
      strategies,
    };
  } finally {
    sending = false;
    await driver.stop(5_000);
    agent.destroy();
    await edge.close();
    await origin.close();
    dir.remove();
  }
}

export function renderFigures(figures: ReloadBenchFigures): string {
  const ms = (s: { min: number; p50: number; max: number }): string => `${s.min} / ${s.p50} / ${s.max}`;
  return [
    '## Reload under traffic',
    '',
    'Scenario (`node --import tsx test/bench/reload-under-traffic.ts --write`, also `npm run bench`): the stand-in',
    `cloudflared runs under the spawn driver behind the sandbox edge; ${figures.reloads} reloads with the replica strategy`,
    '(start a second replica on the new config, wait for its `/ready`, SIGTERM the old one and wait until it has',
    'unregistered; it drains in the background) while 4 keep-alive clients send GET requests through the edge back to back.',
    'The same on the real cloudflared: "The real cloudflared" below.',
    '',
    '| figure | value | target |',
    '| --- | --- | --- |',
    `| reloads (strategy used) | ${Object.entries(figures.strategies).map(([name, count]) => `${count} × ${name}`).join(', ')} | all replica |`,
    `| requests sent during the reloads | ${figures.requests} (${figures.requestsPerSecond}/s) | |`,
    `| failed requests | ${figures.failed} | 0 |`,
    `| wait for the old replica to unregister after the new one was ready, ms (min / p50 / max) | ${ms(figures.overlapMs)} | |`,
    `| reload duration, ms (min / p50 / max) | ${ms(figures.durationMs)} | |`,
    '',
    `Measured on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? 'unknown CPU'}).`,
    'The duration is dominated by the replica\'s start-up (a Node process); the old replica unregisters at once on SIGTERM,',
    'then finishes its in-flight requests and exits in the background.',
    '',
  ].join('\n');
}

/** Replaces (or appends) the section in docs/performance.md, leaving the other sections alone. */
export function writeFiguresToDocs(figures: ReloadBenchFigures): string {
  const rendered = renderFigures(figures);
  const heading = '## Reload under traffic';
  return writeDocSection('Reload under traffic', rendered.startsWith(heading) ? rendered.slice(heading.length) : rendered);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const reloadsAt = process.argv.indexOf('--reloads');
  const figures = await runReloadBenchmark({ reloads: reloadsAt === -1 ? 10 : Number(process.argv[reloadsAt + 1]) });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  if (process.argv.includes('--write')) process.stdout.write(`wrote ${writeFiguresToDocs(figures)}\n`);
  process.exit(figures.failed === 0 ? 0 : 1);
}
