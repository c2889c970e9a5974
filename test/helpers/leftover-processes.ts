import { chmodSync, mkdtempSync, readFileSync, readdirSync, type Dirent, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { isProcessRunning, isRunningCommand, readProcessArgv, waitForProcessEnd } from '../../src/cloudflared/process-identity.ts';

/**
 * The processes a test run started and left running, found and stopped after the run (test/global-setup.ts).
 *
 * Every test's temporary directory lives under one run directory (the global setup points TMPDIR at it), so
 * whatever a test started there is registered by what it wrote there: the spawn driver's pidfiles
 * (`cloudflared/cloudflared.pid`, JSON or a bare pid, and `cloudflared.pid.others`, a JSON list). A worker that
 * crashed never ran its `afterAll`, so its managers and their detached cloudflared outlive it; this finds them.
 *
 * A pid is only ever signalled when /proc proves it is ours: its command line names a path inside the run
 * directory (the `--config` of a cloudflared, the `--data-dir` of a manager). A pid reused by another program,
 * or a process of another suite running beside this one (its own run directory), is never touched.
 */

export interface LeftoverProcess {
  pid: number;
  argv: string[];
  /** How it was found: the pidfile that named it, or `cmdline` for a process found by its command line alone. */
  foundBy: string;
}

const RUN_PREFIX = 'tm-run-';
const OWNER_FILE = 'owner.json';

/** A new run directory under `base`, `tm-run-XXXXXX`, naming this process (pid and command line) as its owner. */
export function claimRunDir(base: string): string {
  const dir = mkdtempSync(join(base, RUN_PREFIX));
  // Traversable by every user, as /tmp itself is: a few tests run the command as nobody on files below it (each test's
  // own directory keeps the mode it needs).
  chmodSync(dir, 0o755);
  // The command line as /proc shows it: process.argv has node's resolved path where /proc has what was run.
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, argv: readProcessArgv(process.pid) ?? process.argv }));
  return dir;
}

/** The run directories under `base` whose owner no longer runs (a test run killed before its teardown). */
export function abandonedRunDirs(base: string): string[] {
  return readdirSync(base)
    .filter((name) => name.startsWith(RUN_PREFIX))
    .map((name) => join(base, name))
    .filter((dir) => {
      try {
        const owner = JSON.parse(readFileSync(join(dir, OWNER_FILE), 'utf8')) as { pid: number; argv: string[] };
        return !isRunningCommand(owner.pid, owner.argv);
      } catch {
        return false; // not one of ours, or still being made
      }
    });
}

const PIDFILES = new Set(['cloudflared.pid', 'cloudflared.pid.others']);
/** Our programs, by the file their command line runs: the manager, the stand-in cloudflared, the emulator. */
const OUR_PROGRAMS = ['tunnel-manager.js', 'standin-cloudflared.js', 'cloudflare-emulator.js'];

/** The pids a pidfile names (the spawn driver writes a JSON record, a list of them, or a bare pid). */
export function pidsInPidfile(path: string): number[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return [];
  }
  if (/^\d+$/.test(text)) return [Number(text)];
  try {
    const parsed = JSON.parse(text) as unknown;
    const records = Array.isArray(parsed) ? parsed : [parsed];
    return records.map((record) => (record as { pid?: unknown } | null)?.pid).filter((pid): pid is number => Number.isInteger(pid) && (pid as number) > 0);
  } catch {
    return [];
  }
}

function pidfilesUnder(dir: string, found: string[] = []): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !entry.isSymbolicLink()) pidfilesUnder(path, found);
    else if (entry.isFile() && PIDFILES.has(entry.name)) found.push(path);
  }
  return found;
}

/** True when the command line names the run directory itself or a path inside it. */
export function mentionsRunDir(argv: readonly string[], runDir: string): boolean {
  const prefix = runDir.endsWith(sep) ? runDir : `${runDir}${sep}`;
  return argv.some((arg) => arg === runDir || arg.includes(prefix));
}

/**
 * The running processes of this run: every pid a pidfile under `runDir` names, and every process of ours (manager,
 * stand-in, emulator) whose command line points into `runDir` (a manager a crashed worker started, whose
 * cloudflared it would restart). Only those whose command line proves they belong to this run are returned.
 */
export function findLeftovers(runDir: string): LeftoverProcess[] {
  const found = new Map<number, LeftoverProcess>();
  const consider = (pid: number, foundBy: string, belongs: (argv: string[]) => boolean): void => {
    if (pid === process.pid || found.has(pid) || !isProcessRunning(pid)) return;
    const argv = readProcessArgv(pid);
    if (argv !== null && belongs(argv)) found.set(pid, { pid, argv, foundBy });
  };
  for (const pidfile of pidfilesUnder(runDir)) {
    for (const pid of pidsInPidfile(pidfile)) consider(pid, pidfile, (argv) => mentionsRunDir(argv, runDir));
  }
  const ours = (argv: string[]): boolean => argv.some((arg) => OUR_PROGRAMS.some((program) => arg.endsWith(program)));
  for (const entry of readdirSync('/proc')) {
    if (/^\d+$/.test(entry)) consider(Number(entry), 'cmdline', (argv) => ours(argv) && mentionsRunDir(argv, runDir));
  }
  return [...found.values()];
}

/**
 * Stops the leftovers of `runDir`: managers first (a running manager would restart its cloudflared, and a stopped
 * one stops its own), then whatever is still there; SIGTERM, then SIGKILL after `graceMs`. The command line is
 * checked again right before each signal. Returns what it signalled.
 */
export async function stopLeftovers(runDir: string, graceMs = 5_000): Promise<LeftoverProcess[]> {
  const isManager = (p: LeftoverProcess): boolean => p.argv.some((arg) => arg.endsWith('tunnel-manager.js'));
  const managers = await stopAll(findLeftovers(runDir).filter(isManager), graceMs);
  return [...managers, ...(await stopAll(findLeftovers(runDir), graceMs))];
}

async function stopAll(leftovers: LeftoverProcess[], graceMs: number): Promise<LeftoverProcess[]> {
  const signalled: LeftoverProcess[] = [];
  const signal = (leftover: LeftoverProcess, name: NodeJS.Signals): boolean => {
    const argv = readProcessArgv(leftover.pid);
    if (argv === null || argv.join('\0') !== leftover.argv.join('\0') || !isProcessRunning(leftover.pid)) return false;
    try {
      process.kill(leftover.pid, name);
      return true;
    } catch {
      return false;
    }
  };
  await Promise.all(
    leftovers.map(async (leftover) => {
      if (!signal(leftover, 'SIGTERM')) return;
      signalled.push(leftover);
      if (await waitForProcessEnd(leftover.pid, graceMs)) return;
      if (signal(leftover, 'SIGKILL')) await waitForProcessEnd(leftover.pid, graceMs);
    }),
  );
  return signalled;
}
