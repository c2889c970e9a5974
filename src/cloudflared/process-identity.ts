import { readFileSync } from 'node:fs';
import { errnoCodeOf } from '../thrown.ts';

/**
 * What /proc says about a pid that is not (or no longer) our child: whether it really runs — a zombie
 * that nobody reaped answers `kill(pid, 0)` but is dead — and which command line it runs, so a pidfile
 * left behind is never trusted for a pid the kernel has since given to another program.
 */
export function isProcessRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errnoCodeOf(error) !== 'EPERM') return false;
  }
  try {
    // Field 3 of /proc/PID/stat, after the parenthesised command name (which may itself hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // No /proc (not Linux): the signal probe above is all we have.
    return true;
  }
}

/** The argv of a running process, or null when it is gone or unreadable. */
export function readProcessArgv(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return null;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

/** true when `pid` is running exactly `argv` (same arguments in the same order). */
export function isRunningCommand(pid: number, argv: readonly string[]): boolean {
  if (!isProcessRunning(pid)) return false;
  const actual = readProcessArgv(pid);
  return actual !== null && actual.length === argv.length && actual.every((arg, index) => arg === argv[index]);
}

/** Polls until the pid is no longer running or the time is up; true when it ended. */
export async function waitForProcessEnd(pid: number, timeoutMs: number, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isProcessRunning(pid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Calls `onGone` once when the pid stops running (a zombie counts as gone). Polling every 250 ms keeps
 * detection of a crash well under a second for a process that is not our child. Returns a stop function.
 */
export function watchProcessEnd(pid: number, onGone: () => void, intervalMs = 250): () => void {
  let active = true;
  const timer = setInterval(() => {
    if (!active || isProcessRunning(pid)) return;
    active = false;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return () => {
    active = false;
    clearInterval(timer);
  };
}
