import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { abandonedRunDirs, claimRunDir, stopLeftovers, type LeftoverProcess } from './helpers/leftover-processes.ts';

/**
 * Before any test file:
 *
 * - dist/ is built. Tests run the TypeScript sources through vitest, but the ones that start the real command
 *   (`tunnel-manager …`) or the stand-in cloudflared run what `npm run build` makes, as users do, so dist/ can never
 *   be stale under test.
 * - This run gets a directory of its own, `<tmpdir>/tm-run-XXXXXX`, and TMPDIR points at it for the workers and
 *   everything they start: every `tm-*` temp dir of this run is inside it. It is the registry the teardown reads.
 *
 * After the last test file (and at the start of a later run, for a run whose vitest itself was killed): whatever
 * this run started and left running is stopped by pidfile, only when /proc proves it is ours (its command line
 * points into the run directory; test/helpers/leftover-processes.ts). A worker that crashes never runs its
 * `afterAll`, and its managers and their detached cloudflared would otherwise outlive the suite. What was found is
 * printed: a leftover after a run with no crashed worker is a test that does not stop what it starts.
 */
export default async function setup(): Promise<() => Promise<void>> {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], { stdio: 'inherit' });
  const base = tmpdir();
  for (const abandoned of abandonedRunDirs(base)) {
    report(abandoned, await stopLeftovers(abandoned));
    rmSync(abandoned, { recursive: true, force: true });
  }
  const runDir = claimRunDir(base);
  process.env.TMPDIR = runDir;
  return async () => {
    process.env.TMPDIR = base;
    report(runDir, await stopLeftovers(runDir));
    rmSync(runDir, { recursive: true, force: true });
  };
}

function report(runDir: string, stopped: LeftoverProcess[]): void {
  if (stopped.length === 0) return;
  const lines = stopped.map((p) => `  pid ${p.pid} (${p.foundBy}): ${p.argv.join(' ').slice(0, 200)}`);
  console.warn(`\n[test teardown] stopped ${stopped.length} process(es) the tests of ${runDir} left running:\n${lines.join('\n')}\n`);
}
