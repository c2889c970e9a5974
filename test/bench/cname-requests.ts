/**
 * CNAME requests end to end (docs/design.md, Budgets):
 *  - the overhead of `tunnel_request_cname` beyond Cloudflare API time and the tunnel's reload/ready wait: p50 < 50 ms;
 *  - 100 concurrent requests from 4 projects: all correct, ≤ 3 reloads, 0 lost rules.
 *
 * The whole service runs in this process (`startTestService`: sandbox mode, real SQLite file, the Cloudflare API
 * emulator over HTTP on 127.0.0.1, the stand-in cloudflared as a real process behind the local edge, MCP over real
 * HTTP with the SDK's Client), with the default 30 s probe interval.
 *
 * Instruments (measurement only; nothing is replaced):
 *  - every HTTP request the Cloudflare SDK makes goes through the global `fetch`; a wrapper that calls the real
 *    fetch records the time of each one to the emulator's URL (until the response's headers arrive) = Cloudflare API time;
 *  - the tunnel actor's `tunnel.reloaded` event carries the reload's own duration (replica start → /ready → old one drained).
 *
 *   node --import tsx test/bench/cname-requests.ts [--sequential 20] [--concurrent 100] [--write]
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { AnyActorRef } from 'xstate';
import type { TunnelEmitted } from '../../machines/tunnel.machine.ts';
import { waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, portOf as portOfServer, projectPorts, startOriginInRange, startTestService, viaEdge } from '../helpers/service.ts';
import { isMain, machineLine, spreadOf, verdict, writeDocSection, type Spread } from './support.ts';

interface Timing {
  step: string;
  ms: number;
}

export interface RequestBreakdown {
  totalMs: number;
  cloudflareMs: number;
  cloudflareCalls: number;
  reloadMs: number;
  steps: Record<string, number>;
  /** total − Cloudflare HTTP time (all calls, the pre-check included) − reload − tunnelReady */
  overheadMs: number;
  /** total − dns step − reload − tunnelReady (the brief's formula; counts the pre-check lookup as overhead) */
  overheadByStepsMs: number;
}

export interface CnameFigures {
  sequential: {
    requests: number;
    overhead: Spread;
    overheadBySteps: Spread;
    total: Spread;
    cloudflare: Spread;
    reload: Spread;
    steps: Record<string, Spread>;
    outsideSagaMs: Spread;
    ingressMinusReload: Spread;
    /** Time in each state of the ingress actor (rendering, writing, reloading, confirming…), per cycle. */
    ingressStates: Record<string, Spread>;
    pass: boolean;
  };
  concurrent: {
    requests: number;
    projects: number;
    ok: number;
    errors: string[];
    wallMs: number;
    latency: Spread;
    tunnelReloads: number;
    ingressReloads: number;
    ingressCycles: number;
    activeInLedger: number;
    rulesInConfig: number;
    lostRules: string[];
    recordsInEmulator: number;
    servedThroughEdge: number;
    pass: boolean;
  };
}

const PROJECTS = ['consilio', 'openhorizon', 'odin', 'health-agent'] as const;

type Env = Awaited<ReturnType<typeof startTestService>>;

function child(env: Env, id: string): AnyActorRef {
  return env.service.supervisor.actor.getSnapshot().children[id as 'tunnel'] as unknown as AnyActorRef;
}

async function idle(env: Env): Promise<void> {
  await waitUntil(
    () => {
      const ingress = child(env, 'ingress').getSnapshot() as { value: unknown; context: { pending: unknown[] } };
      const tunnel = child(env, 'tunnel').getSnapshot() as { value: unknown };
      return (ingress.value === 'idle' && ingress.context.pending.length === 0 && typeof tunnel.value === 'object' && tunnel.value !== null && 'running' in tunnel.value) || undefined;
    },
    60_000,
    'the ingress actor to be idle and the tunnel running',
  );
}

export async function runCnameBenchmark(options: { sequential?: number; concurrent?: number } = {}): Promise<CnameFigures> {
  const sequentialCount = options.sequential ?? 20;
  const concurrentCount = options.concurrent ?? 100;
  const env = await startTestService({ health: { probeIntervalSeconds: 30 } });
  const origins: Server[] = [];
  const clients: Client[] = [];
  const realFetch = globalThis.fetch;
  const apiBase = env.service.sandbox!.apiBaseUrl;
  const cfCalls: { start: number; end: number }[] = [];
  globalThis.fetch = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith(apiBase)) return realFetch(input, init);
    const start = performance.now();
    try {
      return await realFetch(input, init);
    } finally {
      cfCalls.push({ start, end: performance.now() });
    }
  };
  const reloads: { at: number; durationMs: number; strategy: string }[] = [];
  // Time spent in each state of the ingress actor, per state, over the sequential requests.
  const ingressStates: Record<string, number[]> = {};
  let ingressState: { name: string; since: number } | null = null;
  let recordIngress = false;
  child(env, 'ingress').subscribe((snapshot) => {
    const name = String((snapshot as { value: unknown }).value);
    if (ingressState?.name === name) return;
    const now = performance.now();
    if (ingressState && recordIngress) (ingressStates[ingressState.name] ??= []).push(now - ingressState.since);
    ingressState = { name, since: now };
  });
  (child(env, 'tunnel') as unknown as { on: (type: string, handler: (event: TunnelEmitted) => void) => void }).on('tunnel.reloaded', (event) => {
    if (event.type === 'tunnel.reloaded' && event.outcome) reloads.push({ at: performance.now(), durationMs: event.outcome.durationMs, strategy: event.outcome.strategy });
  });
  try {
    const info = env.service.sandboxInfo!;
    const clientOf: Record<string, Client> = {};
    for (const project of PROJECTS) {
      clientOf[project] = await mcpClient(info.mcpUrl, info.tokens[project]!);
      clients.push(clientOf[project]);
    }
    // One port per project, high in its range (the tests use the low ports), with an origin behind it.
    const portOf: Record<string, number> = {};
    for (const project of PROJECTS) {
      // A free port of the upper part of the project's range (startTestService reserves the ranges on this host).
      const origin = await startOriginInRange(...projectPorts(env.config, project, [0.5, 1]), `bench-${project}`);
      const allocated = await call<{ port: number }>(clientOf[project]!, 'port_allocate', { port: portOfServer(origin), purpose: 'benchmark origin' });
      if (allocated.isError) throw new Error(`port_allocate failed: ${JSON.stringify(allocated.data)}`);
      portOf[project] = allocated.data.port;
      origins.push(origin);
    }
    await idle(env);

    // ── sequential requests: the overhead ─────────────────────────────────────
    const consilio = clientOf.consilio!;
    const breakdowns: RequestBreakdown[] = [];
    for (let i = -2; i < sequentialCount; i += 1) {
      await idle(env);
      const cfFrom = cfCalls.length;
      const reloadFrom = reloads.length;
      const started = performance.now();
      const result = await call<{ timings: Timing[] }>(consilio, 'tunnel_request_cname', { subdomain: `seq-${i + 2}`, targetPort: portOf.consilio });
      const totalMs = performance.now() - started;
      if (result.isError) throw new Error(`tunnel_request_cname failed: ${JSON.stringify(result.data)}`);
      if (i < 0) continue; // warm-up
      recordIngress = true;
      const cf = cfCalls.slice(cfFrom);
      const cloudflareMs = cf.reduce((sum, c) => sum + (c.end - c.start), 0);
      const reloadMs = reloads.slice(reloadFrom).reduce((sum, r) => sum + r.durationMs, 0);
      const steps = Object.fromEntries(result.data.timings.map((t) => [t.step, t.ms]));
      const ready = steps.tunnelReady ?? 0;
      breakdowns.push({
        totalMs,
        cloudflareMs,
        cloudflareCalls: cf.length,
        reloadMs,
        steps,
        overheadMs: totalMs - cloudflareMs - reloadMs - ready,
        overheadByStepsMs: totalMs - (steps.dns ?? 0) - reloadMs - ready,
      });
    }
    const stepNames = ['reserve', 'dns', 'ingress', 'tunnelReady', 'activate'];
    const sagaMs = (b: RequestBreakdown) => stepNames.reduce((sum, step) => sum + (b.steps[step] ?? 0), 0);
    const overhead = spreadOf(breakdowns.map((b) => b.overheadMs));
    const overheadBySteps = spreadOf(breakdowns.map((b) => b.overheadByStepsMs));
    const sequential = {
      requests: breakdowns.length,
      overhead,
      overheadBySteps,
      total: spreadOf(breakdowns.map((b) => b.totalMs)),
      cloudflare: spreadOf(breakdowns.map((b) => b.cloudflareMs)),
      reload: spreadOf(breakdowns.map((b) => b.reloadMs)),
      steps: Object.fromEntries(stepNames.map((step) => [step, spreadOf(breakdowns.map((b) => b.steps[step] ?? 0))])),
      outsideSagaMs: spreadOf(breakdowns.map((b) => b.totalMs - sagaMs(b))),
      ingressMinusReload: spreadOf(breakdowns.map((b) => (b.steps.ingress ?? 0) - b.reloadMs)),
      ingressStates: Object.fromEntries(Object.entries(ingressStates).filter(([name]) => name !== 'idle').map(([name, values]) => [name, spreadOf(values)])),
      pass: overhead.p50 < 50 && overheadBySteps.p50 < 50,
    };
    recordIngress = false;

    // ── 100 concurrent requests from 4 projects ───────────────────────────────
    await idle(env);
    const tunnelReloads0 = (child(env, 'tunnel').getSnapshot() as { context: { reloadCount: number } }).context.reloadCount;
    const ingress0 = (child(env, 'ingress').getSnapshot() as { context: { reloads: number; cycles: number } }).context;
    const wanted = Array.from({ length: concurrentCount }, (_, i) => {
      const project = PROJECTS[i % PROJECTS.length]!;
      return { project, subdomain: `many-${String(i).padStart(3, '0')}`, hostname: `many-${String(i).padStart(3, '0')}.153.se` };
    });
    const started = performance.now();
    const outcomes = await Promise.all(
      wanted.map(async (request) => {
        const t0 = performance.now();
        const result = await call<{ hostname: string; code?: string; message?: string }>(clientOf[request.project]!, 'tunnel_request_cname', {
          subdomain: request.subdomain,
          targetPort: portOf[request.project],
        });
        return { ...request, result, ms: performance.now() - t0 };
      }),
    );
    const wallMs = performance.now() - started;
    await idle(env);
    const tunnelReloads = (child(env, 'tunnel').getSnapshot() as { context: { reloadCount: number } }).context.reloadCount - tunnelReloads0;
    const ingress1 = (child(env, 'ingress').getSnapshot() as { context: { reloads: number; cycles: number } }).context;
    const ok = outcomes.filter((o) => !o.result.isError && o.result.data.hostname === o.hostname);
    const errors = outcomes.filter((o) => o.result.isError).map((o) => `${o.hostname}: ${o.result.data.code} ${o.result.data.message}`);
    const ledger = env.service.backend.listRoutes({});
    const activeInLedger = wanted.filter((w) => ledger.some((route) => route.hostname === w.hostname && route.status === 'active' && route.project === w.project)).length;
    const configText = readFileSync(env.config.cloudflared.configPath, 'utf8');
    const lostRules = wanted.filter((w) => !configText.includes(`hostname: ${w.hostname}\n`)).map((w) => w.hostname);
    const records = Object.values(env.service.sandbox!.emulator.state().records ?? {}).flat() as { name: string; type: string }[];
    const recordsInEmulator = wanted.filter((w) => records.some((record) => record.name === w.hostname && record.type === 'CNAME')).length;
    let servedThroughEdge = 0;
    for (const w of wanted) {
      const response = await viaEdge(info.edgeUrl, w.hostname);
      if (response.status === 200 && response.body.includes(`hello from bench-${w.project}`)) servedThroughEdge += 1;
    }
    const concurrent = {
      requests: concurrentCount,
      projects: PROJECTS.length,
      ok: ok.length,
      errors: errors.slice(0, 10),
      wallMs: Math.round(wallMs),
      latency: spreadOf(outcomes.map((o) => o.ms)),
      tunnelReloads,
      ingressReloads: ingress1.reloads - ingress0.reloads,
      ingressCycles: ingress1.cycles - ingress0.cycles,
      activeInLedger,
      rulesInConfig: concurrentCount - lostRules.length,
      lostRules,
      recordsInEmulator,
      servedThroughEdge,
      pass: ok.length === concurrentCount && tunnelReloads <= 3 && lostRules.length === 0 && activeInLedger === concurrentCount && recordsInEmulator === concurrentCount && servedThroughEdge === concurrentCount,
    };
    return { sequential, concurrent };
  } finally {
    globalThis.fetch = realFetch;
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    for (const origin of origins) origin.close();
    await env.stop();
  }
}

const ms = (s: Spread): string => `${s.p50} / ${s.p90} / ${s.max}`;

export function renderOverhead(f: CnameFigures): string {
  const s = f.sequential;
  return [
    `Budget (docs/design.md, Budgets): CNAME request overhead beyond Cloudflare API time and the tunnel's ready-wait, p50 < 50 ms. Result: ${verdict(s.pass)}.`,
    '',
    'Command: `node --import tsx test/bench/cname-requests.ts --write` (also `npm run bench`, `test/bench/cname-requests.bench.ts`);',
    'the same run measures the 100 concurrent requests below.',
    '',
    'Scenario: the whole service in the benchmark process (`startTestService`: sandbox mode, SQLite file, the Cloudflare API emulator',
    'over HTTP on 127.0.0.1, the stand-in cloudflared as a real process behind the local edge, probes every 30 s). One project',
    `supervisor (consilio, the SDK's MCP Client over loopback HTTP) sends ${s.requests} \`tunnel_request_cname\` calls one after the other (after 2`,
    'warm-up calls), each for a new hostname on an allocated port with an origin listening, waiting for the ingress actor to be idle between them.',
    '',
    'How the overhead is computed, per request:',
    '',
    '- `total` = wall time of the `tools/call` at the client (MCP round trip included);',
    '- `Cloudflare` = the sum of the durations of every HTTP request the Cloudflare SDK made during the call, measured by a wrapper',
    '  around the global `fetch` that calls the real one (the pre-check lookup `findRecords` before the saga, and the `dns` step\'s',
    '  lookup and create);',
    '- `reload` = the duration the tunnel actor reports in its `tunnel.reloaded` event (replica started on the new config.yml, its',
    '  `/ready` answered, old replica drained), which happens inside the `ingress` step; `tunnelReady` = the saga\'s wait step;',
    '- **overhead = total − Cloudflare − reload − tunnelReady** (the budget figure); also shown: the brief\'s formula',
    '  **total − dns step − reload − tunnelReady**, which also counts the pre-check lookup (a Cloudflare call) as overhead.',
    '',
    '| figure, ms | p50 / p90 / max | budget |',
    '| --- | --- | --- |',
    `| overhead = total − Cloudflare − reload − tunnelReady | ${ms(s.overhead)} | p50 < 50: ${verdict(s.overhead.p50 < 50)} |`,
    `| overhead = total − dns step − reload − tunnelReady | ${ms(s.overheadBySteps)} | p50 < 50: ${verdict(s.overheadBySteps.p50 < 50)} |`,
    `| total (client wall time) | ${ms(s.total)} | |`,
    `| Cloudflare API time (all calls) | ${ms(s.cloudflare)} | |`,
    `| tunnel reload (replica) | ${ms(s.reload)} | |`,
    ...Object.entries(s.steps).map(([step, spread]) => `| saga step \`${step}\` | ${ms(spread)} | |`),
    `| of which: \`ingress\` − reload (render, validate, atomic write, hand-off; the git commit runs during the reload) | ${ms(s.ingressMinusReload)} | |`,
    `| outside the saga (MCP transport, auth, zod, audit, pre-check, target choice) | ${ms(s.outsideSagaMs)} | |`,
    ...Object.entries(s.ingressStates).map(([state, spread]) => `| ingress actor in \`${state}\` | ${ms(spread)} | |`),
    '',
    machineLine(),
    '',
  ].join('\n');
}

export function renderConcurrent(f: CnameFigures): string {
  const c = f.concurrent;
  return [
    `Budget (docs/design.md, Budgets): 100 concurrent requests from 4 projects: all correct, ≤ 3 reloads, 0 lost rules. Result: ${verdict(c.pass)}.`,
    '',
    'Command: `node --import tsx test/bench/cname-requests.ts --write` (the same run as the overhead above).',
    '',
    `Scenario: the same service; ${c.projects} project supervisors (consilio, openhorizon, odin, health-agent), each with its own MCP session and an`,
    `allocated port with an origin behind it, send ${c.requests} \`tunnel_request_cname\` calls at once (${c.requests / c.projects} each, all in flight together).`,
    'Reloads are counted on the tunnel actor (`context.reloadCount` of the supervisor\'s `tunnel` child) and on the ingress actor',
    '(`context.reloads`), as the difference across the burst. Then every hostname is checked in the ledger (status `active`, right',
    'owner), in config.yml (its `hostname:` rule), in the emulator (a CNAME) and through the local edge (HTTP 200 from its project\'s origin).',
    '',
    '| figure | value | budget |',
    '| --- | --- | --- |',
    `| requests answered OK | ${c.ok} / ${c.requests}${c.errors.length ? ` (${c.errors.join('; ')})` : ''} | all: ${verdict(c.ok === c.requests)} |`,
    `| cloudflared reloads (tunnel actor) | ${c.tunnelReloads} | ≤ 3: ${verdict(c.tunnelReloads <= 3)} |`,
    `| ingress reloads / render cycles (ingress actor) | ${c.ingressReloads} / ${c.ingressCycles} | |`,
    `| rules lost (hostnames missing from config.yml) | ${c.lostRules.length}${c.lostRules.length ? ` (${c.lostRules.slice(0, 5).join(', ')})` : ''} | 0: ${verdict(c.lostRules.length === 0)} |`,
    `| routes active in the ledger, right owner | ${c.activeInLedger} / ${c.requests} | all |`,
    `| CNAME records in the emulator | ${c.recordsInEmulator} / ${c.requests} | all |`,
    `| hostnames served through the edge by their own origin | ${c.servedThroughEdge} / ${c.requests} | all |`,
    `| wall time of the burst, ms | ${c.wallMs} | |`,
    `| per-request latency, ms (p50 / p90 / max) | ${ms(c.latency)} | |`,
    '',
    machineLine(),
    '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const arg = (name: string, fallback: number) => {
    const at = process.argv.indexOf(name);
    return at === -1 ? fallback : Number(process.argv[at + 1]);
  };
  const figures = await runCnameBenchmark({ sequential: arg('--sequential', 20), concurrent: arg('--concurrent', 100) });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  if (process.argv.includes('--write')) {
    writeDocSection('CNAME request overhead', renderOverhead(figures));
    process.stdout.write(`wrote ${writeDocSection('100 concurrent requests from 4 projects', renderConcurrent(figures))}\n`);
  }
  process.exit(0);
}
