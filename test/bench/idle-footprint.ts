/**
 * The idle footprint with 1,000 routes (docs/design.md, Budgets): resident memory of the manager (< 80 MB), its CPU
 * with the default 30 s health probes (< 0.5 % of one core), and the database with 1,000 routes and one
 * year of health history (< 10 MB; raw samples 7 days, then hourly rollups).
 *
 * 1. `tunnel-manager serve` (a real process, sandbox mode, default probe interval 30 s) on a temp data
 *    directory; once the zones are known, 1,000 active routes go into its ledger through RoutesRepository.
 * 2. The service is stopped (SIGTERM) and started again, so it boots with 1,000 routes: config.yml is rendered
 *    with 1,000 rules and the stand-in cloudflared (a separate process) loads them.
 * 3. After a settle period, the manager's /proc/<pid>/stat utime+stime and /proc/<pid>/status VmRSS are read
 *    over the idle window; the stand-in cloudflared and any other child are reported separately.
 * 4. The service is stopped; a copy of its database gets one year of 30 s probe samples through
 *    HealthRepository.insert, with rollupAndPrune once an hour as the service runs it; the file is measured.
 *
 *   node --import tsx test/bench/idle-footprint.ts [--idle-seconds 120] [--write]
 */
import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HealthRepository } from '../../src/store/health-repository.ts';
import { openDatabase } from '../../src/store/database.ts';
import { waitUntil } from '../helpers/cli.ts';
import {
  CLOCK_TICKS,
  childrenOf,
  cpuTicks,
  isMain,
  machineLine,
  memoryOf,
  seedLedgerThroughFirstBoot,
  sleep,
  startServe,
  tempDataDir,
  verdict,
  writeDocSection,
  writeServeConfig,
  type Memory,
} from './support.ts';

export interface FootprintFigures {
  routes: number;
  rulesInConfig: number;
  idleSeconds: number;
  manager: { pid: number; start: Memory; end: Memory; maxRssMb: number; cpuPercent: number; cpuTicks: number; cpuPerSlice: number[]; rssAtSlice: number[]; steadyCpuPercent: number | null };
  settleSeconds: number;
  others: { command: string; memory: Memory; cpuPercent: number }[];
  probesDuringIdle: number;
  database: {
    bytes: number;
    mb: number;
    pageSize: number;
    freePages: number;
    rawSamples: number;
    hourlyRows: number;
    synthesizedSamples: number;
    synthesisSeconds: number;
    tables: { name: string; bytes: number }[];
  };
  budgets: { memoryMb: number; cpuPercent: number; databaseMb: number };
  pass: { memory: boolean; cpu: boolean; database: boolean };
}

const HOUR = 3_600_000;

/** Mean CPU of the slices from the 4th on (they start 2 minutes after boot: 30 s settle + 3 × 30 s), when there are any. */
function steady(slices: number[]): number | null {
  const late = slices.slice(3);
  return late.length === 0 ? null : Math.round((late.reduce((sum, value) => sum + value, 0) / late.length) * 1000) / 1000;
}
const DAY = 24 * HOUR;

/**
 * One year of probe samples every `intervalMs`, stored as the service stores them: HealthRepository.insert, and
 * rollupAndPrune (raw 7 days, hourly rollups). The service calls rollupAndPrune hourly; here it runs once per
 * simulated day (`rollupEveryMs`) and once at the end. The rows kept at the end are the same, since every call
 * recomputes each complete hour still in the raw table and prunes whole hours older than 7 days; only the raw table
 * peaks a day larger in between, which can only make the file bigger. (8,760 hourly calls take minutes, each one
 * re-aggregating 7 days of raw samples.)
 */
export function synthesizeHealthYear(path: string, intervalMs = 30_000, now = Date.now(), rollupEveryMs = DAY): { samples: number; seconds: number } {
  const { db } = openDatabase(path);
  const health = new HealthRepository(db);
  const started = performance.now();
  const from = now - 365 * DAY;
  let samples = 0;
  let lastRollup = 0;
  let totalRequests = 0;
  let pid = 40_000;
  const insertHour = db.transaction((hourStart: number) => {
    for (let ts = hourStart; ts < hourStart + HOUR && ts < now; ts += intervalMs) {
      samples += 1;
      // Mostly healthy, with a few degraded and failed probes and a restart now and then.
      const roll = (samples * 7919) % 1000;
      const result = roll < 2 ? 'failed' : roll < 10 ? 'degraded' : 'ok';
      if (roll === 0) pid += 1;
      totalRequests += (samples * 31) % 50;
      health.insert({
        ts,
        result,
        pid: result === 'failed' ? null : pid,
        readyConnections: result === 'ok' ? 4 : result === 'degraded' ? 2 : null,
        haConnections: result === 'failed' ? null : 4,
        totalRequests: result === 'failed' ? null : totalRequests,
        requestErrors: result === 'failed' ? null : Math.floor(totalRequests / 1000),
        latencyMs: result === 'failed' ? null : 1 + ((samples * 13) % 40) / 10,
        ...(result === 'failed' ? { error: 'GET /ready: connect ECONNREFUSED 127.0.0.1:20241' } : {}),
      });
      if (ts - lastRollup > rollupEveryMs) {
        lastRollup = ts;
        health.rollupAndPrune(ts, 7);
      }
    }
  });
  for (let hourStart = from; hourStart < now; hourStart += HOUR) insertHour(hourStart);
  health.rollupAndPrune(now, 7);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { samples, seconds: Math.round((performance.now() - started) / 100) / 10 };
}

export async function runFootprintBenchmark(options: { idleSeconds?: number; routes?: number; settleSeconds?: number } = {}): Promise<FootprintFigures> {
  const idleSeconds = options.idleSeconds ?? 120;
  const settleSeconds = options.settleSeconds ?? 30;
  const routeCount = options.routes ?? 1000;
  const dir = tempDataDir('idle');
  const configPath = await writeServeConfig(dir.path);
  try {
    // 1. first boot: zones known, then the ledger gets its 1,000 routes
    await seedLedgerThroughFirstBoot(dir.path, configPath, routeCount);

    // 2. boot with 1,000 routes
    const serve = await startServe(dir.path, configPath);
    let figures: Omit<FootprintFigures, 'database' | 'pass'>;
    try {
      const { readFileSync } = await import('node:fs');
      await waitUntil(() => (readFileSync(serve.info.configPath, 'utf8').match(/^\s*- hostname:/gm)?.length ?? 0) >= routeCount || undefined, 30_000, 'config.yml to hold the routes');
      await sleep(settleSeconds * 1000);
      const rulesInConfig = readFileSync(serve.info.configPath, 'utf8').match(/^\s*- hostname:/gm)?.length ?? 0;
      // The stand-in cloudflared (named by the spawn driver's pidfile, detached) and any other child, e.g. esbuild's service for tsx.
      const cloudflaredPid = (JSON.parse(readFileSync(join(dir.path, 'cloudflared', 'cloudflared.pid'), 'utf8')) as { pid: number }).pid;
      const others = [
        { pid: cloudflaredPid, command: 'stand-in cloudflared (detached, spawn driver)' },
        ...childrenOf(serve.pid)
          .filter((child) => child.pid !== cloudflaredPid)
          .map((child) => ({ pid: child.pid, command: child.command.includes('esbuild') ? "esbuild's service process (tsx)" : child.command })),
      ];
      const start = memoryOf(serve.pid);
      const ticks0 = cpuTicks(serve.pid);
      const otherTicks0 = others.map((other) => cpuTicks(other.pid));
      const wall0 = performance.now();
      const { db } = openDatabase(serve.info.databasePath);
      const samples0 = (db.prepare('SELECT COUNT(*) AS n FROM tunnel_health').get() as { n: number }).n;
      let maxRssMb = start.rssMb;
      const until = Date.now() + idleSeconds * 1000;
      const slices: number[] = [];
      const rssAtSlice: number[] = [];
      let sliceTicks = ticks0;
      let sliceStart = performance.now();
      while (Date.now() < until) {
        await sleep(1000);
        maxRssMb = Math.max(maxRssMb, memoryOf(serve.pid).rssMb);
        if (performance.now() - sliceStart >= 30_000) {
          const now = cpuTicks(serve.pid);
          slices.push(Math.round((((now - sliceTicks) / CLOCK_TICKS) / ((performance.now() - sliceStart) / 1000)) * 100 * 1000) / 1000);
          rssAtSlice.push(memoryOf(serve.pid).rssMb);
          sliceTicks = now;
          sliceStart = performance.now();
        }
      }
      const seconds = (performance.now() - wall0) / 1000;
      const ticks = cpuTicks(serve.pid) - ticks0;
      const end = memoryOf(serve.pid);
      const samples1 = (db.prepare('SELECT COUNT(*) AS n FROM tunnel_health').get() as { n: number }).n;
      db.close();
      figures = {
        routes: routeCount,
        settleSeconds,
        rulesInConfig,
        idleSeconds: Math.round(seconds),
        manager: { pid: serve.pid, start, end, maxRssMb, cpuTicks: ticks, cpuPercent: Math.round(((ticks / CLOCK_TICKS) / seconds) * 100 * 1000) / 1000, cpuPerSlice: slices, rssAtSlice, steadyCpuPercent: steady(slices) },
        others: others.map((other, index) => ({
          command: other.command.length > 90 ? `${other.command.slice(0, 90)}…` : other.command,
          memory: memoryOf(other.pid),
          cpuPercent: Math.round((((cpuTicks(other.pid) - otherTicks0[index]!) / CLOCK_TICKS) / seconds) * 100 * 1000) / 1000,
        })),
        probesDuringIdle: samples1 - samples0,
        budgets: { memoryMb: 80, cpuPercent: 0.5, databaseMb: 10 },
      };
    } finally {
      await serve.stop();
    }

    // 4. a year of health history on a copy of the database
    const copy = join(dir.path, 'year.db');
    {
      const { db } = openDatabase(join(dir.path, 'tunnel-manager.db'));
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    }
    copyFileSync(join(dir.path, 'tunnel-manager.db'), copy);
    const synthesized = synthesizeHealthYear(copy);
    const { db } = openDatabase(copy);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const freePages = db.pragma('freelist_count', { simple: true }) as number;
    const rawSamples = (db.prepare('SELECT COUNT(*) AS n FROM tunnel_health').get() as { n: number }).n;
    const hourlyRows = (db.prepare('SELECT COUNT(*) AS n FROM tunnel_health_hourly').get() as { n: number }).n;
    let tables: { name: string; bytes: number }[] = [];
    try {
      tables = db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC LIMIT 8').all() as { name: string; bytes: number }[];
    } catch {
      // dbstat is not compiled in: the total is still measured
    }
    db.close();
    const bytes = statSync(copy).size;
    const database = { bytes, mb: Math.round((bytes / 2 ** 20) * 100) / 100, pageSize, freePages, rawSamples, hourlyRows, synthesizedSamples: synthesized.samples, synthesisSeconds: synthesized.seconds, tables };
    return {
      ...figures,
      database,
      pass: {
        memory: figures.manager.end.rssMb < figures.budgets.memoryMb,
        cpu: figures.manager.cpuPercent < figures.budgets.cpuPercent,
        database: database.mb < figures.budgets.databaseMb,
      },
    };
  } finally {
    dir.remove();
  }
}

export function renderFootprint(f: FootprintFigures): string {
  const m = f.manager;
  return [
    'Budgets (docs/design.md, Budgets): resident memory, idle, 1,000 routes < 80 MB; CPU, idle, 30 s probes < 0.5 % of one core; database with',
    `1,000 routes and one year of health history < 10 MB. Result: memory ${verdict(f.pass.memory)}, CPU ${verdict(f.pass.cpu)}, database ${verdict(f.pass.database)}.`,
    '',
    'Command: `node --import tsx test/bench/idle-footprint.ts --write` (also `npm run bench`, `test/bench/idle-footprint.bench.ts`).',
    '',
    'Scenario: a real `tunnel-manager serve` process (sandbox mode, embedded defaults: probes every 30 s) on a fresh data directory.',
    'Once it has the zones, 1,000 active routes are inserted into its ledger through `RoutesRepository`; the service is stopped',
    `and started again, so it boots with them: config.yml is rendered with ${f.rulesInConfig} hostname rules and the stand-in cloudflared`,
    `(a separate, detached process) loads them. After ${f.settleSeconds} s to settle, the manager is left alone for ${f.idleSeconds} s (${f.probesDuringIdle} health probes`,
    'ran in that window) while `/proc/<pid>/status` (VmRSS, every second) and `/proc/<pid>/stat` (utime + stime) are read. The memory verdict',
    'is on the RSS at the end of the window (V8 gives memory back over the first minutes after boot; the start and the maximum are shown too).',
    'The database figure is a copy of that database (1,000 routes, the audit rows and snapshots of both boots) plus one year of',
    `probe samples every 30 s (${f.database.synthesizedSamples.toLocaleString('en')} samples) written through \`HealthRepository.insert\`, with`,
    '`rollupAndPrune` (the service runs it hourly; here once per simulated day and at the end, which keeps the same rows: see `synthesizeHealthYear`): 7 days of raw samples, hourly rollups for the rest.',
    '',
    '| figure | value | budget |',
    '| --- | --- | --- |',
    `| manager RSS, idle (start / end / max), MB | ${m.start.rssMb} / **${m.end.rssMb}** / ${m.maxRssMb} | < 80 (end): ${verdict(f.pass.memory)} |`,
    `| of which anonymous / file-backed (end), MB | ${m.end.rssAnonMb} / ${m.end.rssFileMb} | |`,
    `| manager CPU over ${f.idleSeconds} s idle, % of one core | ${m.cpuPercent} (${m.cpuTicks} ticks of 1/${CLOCK_TICKS} s) | < 0.5: ${verdict(f.pass.cpu)} |`,
    `| the same per 30 s slice (one probe each), % | ${m.cpuPerSlice.join(' / ')} | |`,
    `| manager RSS at the end of each slice, MB | ${m.rssAtSlice.join(' / ')} | |`,
    ...(m.steadyCpuPercent === null
      ? []
      : [`| steady state: mean of the slices more than 2 min after boot, % | ${m.steadyCpuPercent} | < 0.5: ${verdict(m.steadyCpuPercent < 0.5)} |`]),
    ...f.others.map((o) => `| separate process: ${o.command.replace(/\|/g, '\\|')} — RSS MB / CPU % | ${o.memory.rssMb} / ${o.cpuPercent} | not counted |`),
    `| database file with 1,000 routes + 1 year of health, MB | ${f.database.mb} (${f.database.bytes.toLocaleString('en')} bytes, ${f.database.freePages} free pages of ${f.database.pageSize} B) | < 10: ${verdict(f.pass.database)} |`,
    `| rows kept: raw samples / hourly rollups | ${f.database.rawSamples.toLocaleString('en')} / ${f.database.hourlyRows.toLocaleString('en')} | |`,
    ...(f.database.tables.length > 0 ? [`| largest tables and indexes (dbstat), KB | ${f.database.tables.map((t) => `${t.name} ${Math.round(t.bytes / 1024)}`).join(', ')} | |`] : []),
    '',
    machineLine(),
    '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const idleAt = process.argv.indexOf('--idle-seconds');
  const figures = await runFootprintBenchmark({ idleSeconds: idleAt === -1 ? 120 : Number(process.argv[idleAt + 1]) });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  if (process.argv.includes('--write')) process.stdout.write(`wrote ${writeDocSection('Idle footprint with 1,000 routes', renderFootprint(figures))}\n`);
  process.exit(0);
}
