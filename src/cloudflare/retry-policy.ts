import { TunnelManagerError } from '../errors.ts';

/**
 * When to try a Cloudflare operation again. The SDK's own retries are off (a retried POST can
 * duplicate a record); instead the whole operation (look up, then act) is re-run, so a retry sees what
 * the failed attempt may have done. Retried: CLOUDFLARE_UNAVAILABLE (5xx, connection dropped, timeout)
 * with backoff, and CLOUDFLARE_RATE_LIMITED after its Retry-After when that is short enough.
 */

export interface RetryPolicyOptions {
  /** Attempts in all, first included; default 4. */
  maxAttempts?: number;
  /** Waits between attempts after an unavailable error; the last one repeats. Default 250, 1000, 3000 ms. */
  backoffMs?: number[];
  /** A Retry-After longer than this is not waited for: the error goes to the caller. Default 30 s. */
  maxRetryAfterSeconds?: number;
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How long to wait before the next attempt, or undefined when the error must go to the caller. */
export function retryDelayMs(error: unknown, attempt: number, options: RetryPolicyOptions = {}): number | undefined {
  if (!(error instanceof TunnelManagerError)) return undefined;
  if (attempt >= (options.maxAttempts ?? 4)) return undefined;
  if (error.code === 'CLOUDFLARE_RATE_LIMITED') {
    const seconds = Number(error.details.retryAfterSeconds ?? Number.POSITIVE_INFINITY);
    return seconds <= (options.maxRetryAfterSeconds ?? 30) ? seconds * 1000 : undefined;
  }
  if (error.code === 'CLOUDFLARE_UNAVAILABLE') {
    const backoff = options.backoffMs ?? [250, 1000, 3000];
    return backoff[Math.min(attempt - 1, backoff.length - 1)] ?? 0;
  }
  return undefined;
}

/** Runs `operation(attempt)` (attempt counts from 1) until it succeeds or fails for good. */
export async function withRetries<T>(operation: (attempt: number) => Promise<T>, options: RetryPolicyOptions = {}): Promise<T> {
  const sleep = options.sleep ?? realSleep;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await operation(attempt);
    } catch (error) {
      const delay = retryDelayMs(error, attempt, options);
      if (delay === undefined) throw error;
      if (delay > 0) await sleep(delay);
    }
  }
}
