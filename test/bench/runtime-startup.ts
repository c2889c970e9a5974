/**
 * Start-up costs of the shipped command, each against a baseline taken in the same run (the machines are shared
 * and noisy, so times are ratios): `node -e 0`, `tunnel-manager --help`, `tunnel-manager call tunnel_get_status`
 * against a running sandbox, `serve` until sandbox.json is written, and the resident memory of the manager and of
 * the stand-in cloudflared once settled (no routes).
 *
 *   node --import tsx test/bench/runtime-startup.ts [--write] [--runs N] [--settle S]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startCli, waitUntil } from '../helpers/cli.ts';
import { childrenOf, isMain, machineLine, memoryOf, sleep, spreadOf, startServe, tempDataDir, verdict, writeDocSection, writeServeConfig, type Spread } from './support.ts';

export interface StartupFigures {
  runs: number;
  nodeBaseline: Spread;
  help: Spread;
  callStatus: Spread;
  serveToSandboxJson: Spread;
  helpRatio: number;
  callRatio: number;
  managerRssMb: number;
  standinRssMb: number;
  settleSeconds: number;
}

function timeCommand(argv: string[]): number {
  const started = process.hrtime.bigint();
  execFileSync(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/**
 * `serve` on a fresh data directory until sandbox.json names it; then, once it has started cloudflared (a stop in
 * the middle of the boot would leave the detached stand-in behind), SIGTERM and wait.
 */
async function timeServeStart(): Promise<number> {
  const dir = tempDataDir('startup');
  const configPath = await writeServeConfig(dir.path);
  const sandboxFile = join(dir.path, 'sandbox.json');
  const started = process.hrtime.bigint();
  const cli = startCli(['serve', '--config', configPath, '--data-dir', dir.path, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
  const elapsed = await waitUntil(
    () => {
      if (!existsSync(sandboxFile)) return undefined;
      try {
        if ((JSON.parse(readFileSync(sandboxFile, 'utf8')) as { pid?: number }).pid === cli.child.pid) return Number(process.hrtime.bigint() - started) / 1e6;
      } catch {
        // half-written: read again
      }
      return undefined;
    },
    60_000,
    'serve to write sandbox.json',
    5,
  );
  await waitUntil(() => cli.output().includes('"msg":"started cloudflared"') || undefined, 60_000, 'serve to start cloudflared');
  cli.child.kill('SIGTERM');
  await cli.exited;
  dir.remove();
  return elapsed;
}

export async function runStartupBenchmark(options: { runs?: number; settleSeconds?: number } = {}): Promise<StartupFigures> {
  const runs = options.runs ?? 10;
  const settleSeconds = options.settleSeconds ?? 30;
  const baseline: number[] = [];
  const help: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    // Interleaved, so a burst of load elsewhere hits both alike.
    baseline.push(timeCommand([process.execPath, '-e', '0']));
    help.push(timeCommand([process.execPath, BIN, '--help']));
  }
  const serveStarts: number[] = [];
  for (let i = 0; i < Math.max(3, Math.ceil(runs / 3)); i += 1) serveStarts.push(await timeServeStart());

  const dir = tempDataDir('startup-serve');
  const configPath = await writeServeConfig(dir.path);
  const serve = await startServe(dir.path, configPath);
  const callStatus: number[] = [];
  const callBaseline: number[] = [];
  try {
    for (let i = 0; i < runs; i += 1) {
      callBaseline.push(timeCommand([process.execPath, '-e', '0']));
      callStatus.push(timeCommand([process.execPath, BIN, 'call', 'tunnel_get_status', '--data-dir', dir.path]));
    }
    await sleep(settleSeconds * 1000);
    const managerRssMb = memoryOf(serve.pid).rssMb;
    const standin = childrenOf(serve.pid).find((child) => child.command.includes('tunnel')) ?? findStandin(dir.path);
    const standinRssMb = standin ? memoryOf(standin.pid).rssMb : Number.NaN;
    const nodeBaseline = spreadOf([...baseline, ...callBaseline]);
    const helpSpread = spreadOf(help);
    const callSpread = spreadOf(callStatus);
    return {
      runs,
      nodeBaseline,
      help: helpSpread,
      callStatus: callSpread,
      serveToSandboxJson: spreadOf(serveStarts),
      helpRatio: Math.round((helpSpread.p50 / nodeBaseline.p50) * 100) / 100,
      callRatio: Math.round((callSpread.p50 / nodeBaseline.p50) * 100) / 100,
      managerRssMb,
      standinRssMb,
      settleSeconds,
    };
  } finally {
    await serve.stop();
    rmSync(dir.path, { recursive: true, force: true });
  }
}

/** The stand-in runs detached (spawn driver): find it by its pidfile. */
function findStandin(dataDir: string): { pid: number } | undefined {
  const pidfile = join(dataDir, 'cloudflared', 'cloudflared.pid');
  if (!existsSync(pidfile)) return undefined;
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`) ? { pid } : undefined;
}

export function startupSection(figures: StartupFigures): string {
  const row = (name: string, spread: Spread, extra: string) => `| ${name} | ${spread.p50} | ${spread.p90} | ${spread.max} | ${extra} |`;
  return [
    'Budgets (docs/design.md, Budgets, and decision 0004): `tunnel-manager --help` < 4 × `node -e 0`, `tunnel-manager call tunnel_get_status` < 8 ×',
    '`node -e 0`, both measured in the same run; `serve` to sandbox.json < 1.5 s; stand-in cloudflared RSS < 50 MB.',
    '',
    'Command: `node --import tsx test/bench/runtime-startup.ts --write` (also `npm run bench`, `test/bench/runtime-startup.bench.ts`).',
    '',
    `Scenario: ${figures.runs} runs of each command, \`node -e 0\` interleaved with them as the baseline; \`serve\` on a fresh data directory`,
    'in sandbox mode, timed from spawn until `sandbox.json` names its pid; the manager and its stand-in cloudflared measured',
    `(VmRSS) ${figures.settleSeconds} s after boot with no routes.`,
    '',
    '| figure | p50 ms | p90 ms | max ms | budget |',
    '| --- | --- | --- | --- | --- |',
    row('`node -e 0` (baseline)', figures.nodeBaseline, ''),
    row('`tunnel-manager --help`', figures.help, `${figures.helpRatio} × baseline; < 4 ×: ${verdict(figures.helpRatio < 4)}`),
    row('`tunnel-manager call tunnel_get_status`', figures.callStatus, `${figures.callRatio} × baseline; < 8 ×: ${verdict(figures.callRatio < 8)}`),
    row('`serve` to sandbox.json', figures.serveToSandboxJson, `< 1500 ms: ${verdict(figures.serveToSandboxJson.p50 < 1500)}`),
    '',
    '| process | RSS MB, settled, no routes | budget |',
    '| --- | --- | --- |',
    `| manager (\`serve\`) | ${figures.managerRssMb} | (1,000 routes: see Idle footprint) |`,
    `| stand-in cloudflared | ${figures.standinRssMb} | < 50: ${verdict(figures.standinRssMb < 50)} |`,
    '',
    machineLine(),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const runsAt = args.indexOf('--runs');
  const settleAt = args.indexOf('--settle');
  const figures = await runStartupBenchmark({
    ...(runsAt >= 0 ? { runs: Number(args[runsAt + 1]) } : {}),
    ...(settleAt >= 0 ? { settleSeconds: Number(args[settleAt + 1]) } : {}),
  });
  console.log(JSON.stringify(figures, null, 2));
  if (args.includes('--write')) console.log(`wrote ${writeDocSection('Start-up and the stand-in', startupSection(figures))}`);
}
