import { describe, expect, it } from 'vitest';
import { retryDelayMs, withRetries } from '../../../src/cloudflare/retry-policy.ts';
import { TunnelManagerError, type ErrorCode } from '../../../src/errors.ts';

const failure = (code: ErrorCode, details: Record<string, unknown> = {}) => new TunnelManagerError({ code, message: code, fix: 'retry', details });

describe('retry policy', () => {
  it('waits Retry-After on a short rate limit, backs off on unavailability, and gives up on everything else', () => {
    expect(retryDelayMs(failure('CLOUDFLARE_RATE_LIMITED', { retryAfterSeconds: 2 }), 1)).toBe(2_000);
    expect(retryDelayMs(failure('CLOUDFLARE_RATE_LIMITED', { retryAfterSeconds: 120 }), 1)).toBeUndefined();
    expect(retryDelayMs(failure('CLOUDFLARE_UNAVAILABLE'), 1, { backoffMs: [10, 20] })).toBe(10);
    expect(retryDelayMs(failure('CLOUDFLARE_UNAVAILABLE'), 3, { backoffMs: [10, 20] })).toBe(20);
    expect(retryDelayMs(failure('RECORD_EXISTS'), 1)).toBeUndefined();
    expect(retryDelayMs(failure('CLOUDFLARE_AUTH_FAILED'), 1)).toBeUndefined();
    expect(retryDelayMs(new Error('boom'), 1)).toBeUndefined();
    expect(retryDelayMs(failure('CLOUDFLARE_UNAVAILABLE'), 4, { maxAttempts: 4 })).toBeUndefined();
  });

  it('re-runs the whole operation until it succeeds, sleeping between attempts', async () => {
    const slept: number[] = [];
    let calls = 0;
    const result = await withRetries(
      async (attempt) => {
        calls += 1;
        if (attempt < 3) throw failure('CLOUDFLARE_UNAVAILABLE');
        return 'done';
      },
      { backoffMs: [5, 7], sleep: async (ms) => void slept.push(ms) },
    );
    expect(result).toBe('done');
    expect(calls).toBe(3);
    expect(slept).toEqual([5, 7]);
  });

  it('throws the last error when attempts run out', async () => {
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls += 1;
          throw failure('CLOUDFLARE_UNAVAILABLE');
        },
        { maxAttempts: 2, sleep: async () => {} },
      ),
    ).rejects.toMatchObject({ code: 'CLOUDFLARE_UNAVAILABLE' });
    expect(calls).toBe(2);
  });
});
