import { describe, expect, it } from 'vitest';
import { DELETE_RETRY_DELAYS_MS, describeDeleteRetries, nextDeleteRetryAt } from '../../../src/app/schedules/delete-retry.ts';

describe('when a delete whose DNS record could not be deleted runs again', () => {
  it('soon after the first failures, then backing off to every 5 minutes', () => {
    const at = (attempts: number) => nextDeleteRetryAt(attempts, 0, { code: 'CLOUDFLARE_UNAVAILABLE' });
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(at)).toEqual([5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 300_000, 300_000]);
    expect(describeDeleteRetries()).toBe('after 5 s, 15 s, 30 s, 1 min, 2 min, then every 5 min');
    expect(DELETE_RETRY_DELAYS_MS.at(-1)).toBe(300_000);
  });

  it('not before Cloudflare (or our own budget) said it may', () => {
    expect(nextDeleteRetryAt(1, 1_000, { code: 'CLOUDFLARE_RATE_LIMITED', details: { retryAfterSeconds: 90 } })).toBe(91_000);
    expect(nextDeleteRetryAt(6, 1_000, { code: 'CLOUDFLARE_RATE_LIMITED', details: { retryAfterSeconds: 2 } })).toBe(301_000);
    expect(nextDeleteRetryAt(1, 0, null)).toBe(5_000);
  });
});
