/**
 * `tunnel-manager recover` at 1,000 routes: how long an operator waits to rebuild a lost ledger.
 *
 * The world a lost database leaves behind, built directly: the sandbox's Cloudflare account state
 * (`<dataDir>/sandbox/cloudflare.json`) holds the seed plus 1,000 proxied CNAMEs to the tunnel, each with the
 * ownership marker of one of the four project supervisors, and config.yml holds the 1,000 managed rules the ingress
 * renderer writes for them. Then, several times, the database is deleted and the real command runs as a child
 * process: `recover --json` (zones listed, every record of the account read in pages of 100, 1,000 rows and their
 * ports written in one transaction). Reported: the command's wall time (process start included) and the time it
 * reports for the recovery itself.
 *
 *   node --import tsx test/bench/recover.ts [--runs 5] [--routes 1000] [--write]
 */
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/app/config/config.ts';
import type { RecoveryReport } from '../../src/app/operations/recover.ts';
import { formatOwnershipComment } from '../../src/cloudflare/ownership-marker.ts';
import { renderIngressConfig, type LedgerRule } from '../../src/cloudflared/ingress/ingress-render.ts';
import { startCloudflareEmulator } from '../../src/sandbox/cloudflare-emulator/index.ts';
import { createFixtureState, FIXTURE_ZONES } from '../../src/sandbox/cloudflare-emulator/fixture.ts';
import { runCli } from '../helpers/cli.ts';
import { isMain, machineLine, PS_PROJECTS, spreadOf, tempDataDir, writeDocSection, writeServeConfig, type Spread } from './support.ts';

export interface RecoverFigures {
  routes: number;
  runs: number;
  recoveredActive: number;
  wallMs: Spread;
  recoveryMs: Spread;
}

export async function runRecoverBenchmark(options: { runs?: number; routes?: number } = {}): Promise<RecoverFigures> {
  const runs = options.runs ?? 5;
  const routeCount = options.routes ?? 1000;
  const dir = tempDataDir('recover');
  try {
    const configFile = await writeServeConfig(dir.path);
    const config = loadConfig({ path: configFile, dataDir: dir.path });
    const tunnelTarget = `${config.tunnel.id}.cfargotunnel.com`;
    const rules: LedgerRule[] = [];
    const seed = createFixtureState();
    const at = new Date().toISOString();
    for (let i = 0; i < routeCount; i += 1) {
      const project = PS_PROJECTS[i % PS_PROJECTS.length]!;
      const port = project.from + (i % 100);
      const hostname = `bench-${String(i).padStart(4, '0')}.${FIXTURE_ZONES.main.name}`;
      seed.records.push({
        id: `b${String(i).padStart(31, '0')}`,
        zoneId: FIXTURE_ZONES.main.id,
        name: hostname,
        type: 'CNAME',
        content: tunnelTarget,
        proxied: true,
        ttl: 1,
        comment: formatOwnershipComment(project.name),
        tags: [],
        createdOn: at,
        modifiedOn: at,
      });
      rules.push({ hostname, service: `http://localhost:${port}`, project: project.name, targetReason: 'benchmark' });
    }
    // The account state where the sandbox keeps it, written by the emulator itself.
    const emulator = await startCloudflareEmulator({ seed: () => seed, statePath: join(dir.path, 'sandbox', 'cloudflare.json') });
    await emulator.close();
    mkdirSync(dirname(config.cloudflared.configPath), { recursive: true });
    writeFileSync(config.cloudflared.configPath, renderIngressConfig(null, rules).content);

    const wall: number[] = [];
    const recovery: number[] = [];
    let recoveredActive = 0;
    for (let run = 0; run < runs; run += 1) {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${config.databasePath}${suffix}`, { force: true });
      const started = performance.now();
      const result = await runCli(['recover', '--config', configFile, '--data-dir', dir.path, '--json']);
      wall.push(performance.now() - started);
      if (result.code !== 0) throw new Error(`recover failed (${String(result.code)}): ${result.stderr}`);
      const report = JSON.parse(result.stdout) as RecoveryReport;
      recoveredActive = report.recovered.filter((route) => route.status === 'active').length;
      if (recoveredActive !== routeCount) throw new Error(`recover brought back ${recoveredActive} active routes, not ${routeCount}`);
      recovery.push(report.durationMs);
    }
    return { routes: routeCount, runs, recoveredActive, wallMs: spreadOf(wall), recoveryMs: spreadOf(recovery) };
  } finally {
    dir.remove();
  }
}

export function recoverSection(figures: RecoverFigures): string {
  return [
    `${machineLine()}`,
    '',
    `\`tunnel-manager recover\` on a data directory whose database was deleted, with ${figures.routes.toLocaleString('en-US')} routes to recover:`,
    `${figures.routes.toLocaleString('en-US')} proxied CNAMEs carrying the ownership markers of four projects in the sandbox's Cloudflare account (plus the`,
    'seed\'s four unmarked ones), and their managed rules in config.yml. Each run deletes the database and runs the real command',
    `as a child process (\`recover --json\`); ${figures.runs} runs. \`node --import tsx test/bench/recover.ts --write\` rewrites this section.`,
    '',
    '| what | p50 | min | max |',
    '| --- | --- | --- | --- |',
    `| the command, wall time (process start, sandbox emulator start, recovery, exit) | ${figures.wallMs.p50} ms | ${figures.wallMs.min} ms | ${figures.wallMs.max} ms |`,
    `| the recovery itself (zones, every record read in pages of 100, ${figures.routes.toLocaleString('en-US')} rows and ports in one transaction) | ${figures.recoveryMs.p50} ms | ${figures.recoveryMs.min} ms | ${figures.recoveryMs.max} ms |`,
    '',
    `Every run brought back all ${figures.recoveredActive.toLocaleString('en-US')} routes as active with their targets. Against the real API the record reads`,
    'are 10 pages per 1,000 records, so the network round trips, not the ledger writes, decide the time.',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const value = (name: string): number | undefined => {
    const index = args.indexOf(name);
    return index === -1 ? undefined : Number(args[index + 1]);
  };
  const runs = value('--runs');
  const routes = value('--routes');
  const figures = await runRecoverBenchmark({ ...(runs ? { runs } : {}), ...(routes ? { routes } : {}) });
  console.log(JSON.stringify(figures, null, 2));
  if (args.includes('--write')) console.log(`wrote ${writeDocSection('Recover at 1,000 routes', recoverSection(figures))}`);
}
