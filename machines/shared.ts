/**
 * What the machines share: the clock, the placeholder for an effect that was not provided, the words of an
 * error, and when a periodic task retries. Small functions only; machine files import them so each of these
 * means the same everywhere.
 */
import { isErrorCode, type ErrorCode } from './error-codes.ts';

/** Wall time in milliseconds. Machines read it only here, so tests can move it with fake timers. */
export function now(): number {
  return Date.now();
}

/**
 * The body of an effect a machine declares but does not implement: it throws, and says how to provide it.
 * Use it as `fromPromise<Output, Input>(async () => notProvided('tunnel', 'startTunnel'))`.
 */
export function notProvided(machine: string, name: string): never {
  throw new Error(`${machine} machine: the "${name}" actor was not provided; pass it with ${machine}Machine.provide({ actors: { ${name} } })`);
}

/** An error's message, whatever was thrown (an Error, our error shape, or anything else). */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error && typeof error === 'object' && 'message' in error) return String(error.message);
  return String(error);
}

/** An error's stable code when it has one of ours (machines/error-codes.ts), else `INTERNAL`. */
export function errorCode(error: unknown): ErrorCode {
  const code = error && typeof error === 'object' && 'code' in error ? error.code : undefined;
  return isErrorCode(code) ? code : 'INTERNAL';
}

/** Whether a failed reload says the previous cloudflared kept serving (a replica that never took over). */
export function keptRunning(error: unknown): boolean {
  const details = error && typeof error === 'object' ? (error as { details?: { keptRunning?: unknown } }).details : undefined;
  return details?.keptRunning === true;
}

/**
 * After the `attempt`-th consecutive failure (0-based) of a periodic task: the next attempt number, when it runs
 * (`delaysMs[attempt]`, the last one repeating), and the error in words.
 */
export function afterFailure(attempt: number, delaysMs: readonly number[], error: unknown, now: number): { attempt: number; nextAt: number; lastError: string } {
  const delay = delaysMs[Math.min(attempt, delaysMs.length - 1)] ?? 60_000;
  return { attempt: attempt + 1, nextAt: now + delay, lastError: errorText(error) };
}

/** Milliseconds until `at` (0 when it has passed, or when there is none). */
export function msUntil(at: number | null, now: number): number {
  return Math.max(0, (at ?? now) - now);
}
