/**
 * What tunnel_get_traffic costs (issue 24): the reader over the real provider (the official SDK through the shared
 * rate limiter) against the Cloudflare API emulator over HTTP, which executes each GraphQL Analytics query with the
 * `graphql` library over a week of recorded traffic for 50 hostnames.
 *
 *   node --import tsx test/bench/traffic.ts [--write]
 *
 * Measures a call that reaches Cloudflare (per window, one hostname and all 50), a call answered from the minute of
 * memory, and what a project that asks every second for ten minutes spends of its share: Cloudflare must be reached
 * at most once a minute per hostname and window. `--write` replaces the section in docs/performance.md.
 */
import { fileURLToPath } from 'node:url';
import { TrafficReader, type TrafficTarget } from '../../src/app/use-cases/traffic.ts';
import { createCloudflareProvider } from '../../src/cloudflare/cloudflare-provider.ts';
import { RateLimiter } from '../../src/cloudflare/rate-limiter.ts';
import type { TrafficWindow } from '../../src/contract/traffic.ts';
import { runForProject } from '../../src/request-context.ts';
import { FIXTURE_ZONES, startCloudflareEmulator } from '../../src/sandbox/cloudflare-emulator/index.ts';
import { TrafficLog } from '../../src/sandbox/traffic-log.ts';
import { machineLine, spreadOf, verdict, writeDocSection, type Spread } from './support.ts';

const HOSTS = 50;
const HOUR = 3_600_000;
const RUNS = 20;

export interface TrafficBenchFigures {
  buckets: number;
  cold: Record<TrafficWindow, { one: Spread; all: Spread; queriesPerRequest: number }>;
  warm: Spread;
  /** A project asking for 5 hostnames every second for 10 minutes (clock advanced, not waited). */
  steady: { calls: number; hostnames: number; minutes: number; requests: number; ceiling: number; shareUsedMax: number };
}

const targets: TrafficTarget[] = Array.from({ length: HOSTS }, (_, index) => ({
  hostname: `app${index}.153.se`,
  project: 'consilio',
  zoneId: FIXTURE_ZONES.main.id,
  zoneName: '153.se',
}));

/** A week of traffic: every hour, each hostname answered 200s and a few 500s (two groups per host and hour). */
function weekOfTraffic(now: number): TrafficLog {
  const log = new TrafficLog();
  for (let hour = 0; hour < 7 * 24; hour += 1) {
    for (const target of targets) {
      const at = now - hour * HOUR - 30 * 60_000;
      log.record({ at, host: target.hostname, status: 200, bytes: 1_200 });
      if (hour % 3 === 0) log.record({ at, host: target.hostname, status: 500, bytes: 90 });
    }
  }
  return log;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

export async function runTrafficBenchmark(): Promise<TrafficBenchFigures> {
  const log = weekOfTraffic(Date.now());
  const emulator = await startCloudflareEmulator({ traffic: log });
  try {
    const providerWith = (limiter: RateLimiter) =>
      createCloudflareProvider({ apiBaseUrl: emulator.apiBaseUrl, apiToken: emulator.token, accountId: emulator.accountId, tunnelId: emulator.tunnelId, rateLimiter: limiter });
    const provider = providerWith(new RateLimiter());
    const reader = (now?: () => number, through = provider) => new TrafficReader({ read: (input) => through.zoneTraffic(input), ...(now ? { now } : {}) });
    const cold = {} as TrafficBenchFigures['cold'];
    for (const window of ['1h', '24h', '7d'] as const) {
      const one: number[] = [];
      const all: number[] = [];
      let queriesPerRequest = 0;
      for (let run = 0; run < RUNS; run += 1) {
        const fresh = reader();
        one.push(await timed(() => fresh.read([targets[run % HOSTS]!], window)));
        queriesPerRequest = fresh.spent.queries;
        all.push(await timed(() => reader().read(targets, window)));
      }
      cold[window] = { one: spreadOf(one), all: spreadOf(all), queriesPerRequest };
    }
    const cached = reader();
    await cached.read(targets, '24h');
    const warm: number[] = [];
    for (let run = 0; run < 200; run += 1) warm.push(await timed(() => cached.read([targets[run % HOSTS]!], '24h')));

    // Ten minutes of one call per second for each of 5 hostnames, the clock advanced instead of waited for.
    // Its own limiter, so the share it shows is this project's alone.
    let offset = 0;
    const limiter = new RateLimiter({ limit: 1_000, projectShare: 0.2, now: () => Date.now() + offset });
    const steadyReader = reader(() => Date.now() + offset, providerWith(limiter));
    const asked = targets.slice(0, 5);
    const before = emulator.requests().filter((entry) => entry.route === 'POST /graphql').length;
    let shareUsedMax = 0;
    for (let second = 0; second < 600; second += 1) {
      offset = second * 1_000;
      await runForProject('consilio', async () => {
        for (const target of asked) await steadyReader.read([target], '24h');
      });
      shareUsedMax = Math.max(shareUsedMax, limiter.stats().inWindow);
    }
    const requests = emulator.requests().filter((entry) => entry.route === 'POST /graphql').length - before;
    return {
      buckets: log.size,
      cold,
      warm: spreadOf(warm),
      steady: { calls: 600 * asked.length, hostnames: asked.length, minutes: 10, requests, ceiling: asked.length * 10, shareUsedMax },
    };
  } finally {
    await emulator.close();
  }
}

export function renderFigures(figures: TrafficBenchFigures): string {
  const ms = (spread: Spread): string => `${spread.p50} / ${spread.p90} / ${spread.max}`;
  const rows = (['1h', '24h', '7d'] as const).map(
    (window) => `| \`${window}\` | ${ms(figures.cold[window].one)} | ${ms(figures.cold[window].all)} | ${figures.cold[window].queriesPerRequest} |`,
  );
  const { steady } = figures;
  return [
    'Scenario (`node --import tsx test/bench/traffic.ts --write`): the reader behind `tunnel_get_traffic` over the real',
    'provider (the official SDK through the shared rate limiter, over HTTP on 127.0.0.1) against the Cloudflare API',
    `emulator, which parses and executes each GraphQL Analytics query with \`graphql\` over a week of traffic of ${HOSTS}`,
    `hostnames of one zone (${figures.buckets} recorded groups). "Cold": a new reader each time, so every call reaches the`,
    `emulator and asks the settings node too; ${RUNS} calls per row. Cloudflare's own latency is not in these figures: they`,
    "are the manager's side plus a local GraphQL executor.",
    '',
    '| window | one hostname, ms (p50 / p90 / max) | all 50 hostnames in one request, ms (p50 / p90 / max) | GraphQL queries per request (nodes) |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    `A call answered from the minute of memory: ${ms(figures.warm)} ms (p50 / p90 / max, ${figures.warm.n} calls).`,
    '',
    `**What it spends.** One project asking for ${steady.hostnames} hostnames every second for ${steady.minutes} minutes`,
    `(${steady.calls} calls, the clock advanced rather than waited for) reached Cloudflare ${steady.requests} times: at most once a`,
    `minute per hostname allows ${steady.ceiling}, ${verdict(steady.requests <= steady.ceiling)}. Its share of the budget held at`,
    `most ${steady.shareUsedMax} requests in any 5 minutes (its share: 200 of 1,000). Each request counts its nodes against`,
    "Cloudflare's GraphQL quota (300 per 5 minutes): 1 for `1h` and `24h`; `7d` takes one per `maxDuration` of the plan (7 on",
    'Free, whose nodes span a day; 3 on Pro once its limits are known).',
    '',
    machineLine(),
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const figures = await runTrafficBenchmark();
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  if (process.argv.includes('--write')) process.stdout.write(`wrote ${writeDocSection('tunnel_get_traffic: what a call costs', renderFigures(figures))}\n`);
  process.exit(figures.steady.requests <= figures.steady.ceiling ? 0 : 1);
}
