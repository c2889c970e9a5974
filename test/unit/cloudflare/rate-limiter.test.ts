import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/cloudflare/rate-limiter.ts';

/** A fake clock: sleeping advances it, so nothing waits for real. */
function fakeClock(start = 1_000_000) {
  let now = start;
  const sleeps: number[] = [];
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
    sleeps,
  };
}

describe('RateLimiter', () => {
  it('lets `limit` requests through at once, then makes the next one wait until the oldest leaves the window', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 3, windowMs: 10_000, now: clock.now, sleep: clock.sleep });
    for (let i = 0; i < 3; i += 1) await limiter.acquire();
    expect(clock.sleeps).toEqual([]);
    clock.advance(4_000);
    await limiter.acquire();
    expect(clock.sleeps).toEqual([6_000]);
    expect(limiter.stats()).toMatchObject({ limit: 3, inWindow: 1 });
  });

  it('defaults to 1,000 requests per 5 minutes', () => {
    const limiter = new RateLimiter();
    expect(limiter.limit).toBe(1000);
    expect(limiter.windowMs).toBe(300_000);
  });

  it('queues concurrent callers first come, first served', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 2, windowMs: 1_000, maxWaitMs: 10_000, now: clock.now, sleep: clock.sleep });
    const waits = [limiter.reserve(), limiter.reserve(), limiter.reserve(), limiter.reserve(), limiter.reserve()];
    expect(waits).toEqual([0, 0, 1_000, 1_000, 2_000]);
  });

  it('refuses a wait longer than maxWaitMs with CLOUDFLARE_RATE_LIMITED and the seconds to wait, without taking a slot', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 1, windowMs: 300_000, maxWaitMs: 30_000, now: clock.now, sleep: clock.sleep });
    limiter.reserve();
    expect(() => limiter.reserve()).toThrowError(
      expect.objectContaining({ code: 'CLOUDFLARE_RATE_LIMITED', details: expect.objectContaining({ retryAfterSeconds: 300, source: 'client' }) }),
    );
    clock.advance(300_000);
    expect(limiter.reserve()).toBe(0);
  });

  it('never lets more than `limit` requests into any window, whatever the arrival pattern', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 1, maxLength: 40 }), (limit, gaps) => {
        const clock = fakeClock(0);
        const windowMs = 5_000;
        const limiter = new RateLimiter({ limit, windowMs, maxWaitMs: Number.POSITIVE_INFINITY, now: clock.now, sleep: clock.sleep });
        const sentAt: number[] = [];
        for (const gap of gaps) {
          clock.advance(gap);
          sentAt.push(clock.now() + limiter.reserve());
        }
        for (const t of sentAt) {
          expect(sentAt.filter((s) => s > t - windowMs && s <= t).length).toBeLessThanOrEqual(limit);
        }
      }),
    );
  });

  it('rejects a nonsensical limit', () => {
    expect(() => new RateLimiter({ limit: 0 })).toThrow(RangeError);
  });
});

describe('RateLimiter: each project its share', () => {
  it('refuses a project past its share at once, while other projects and the service keep the rest of the window', () => {
    const clock = fakeClock();
    let project: string | null = 'odin';
    const limiter = new RateLimiter({ limit: 10, windowMs: 60_000, projectShare: 0.3, now: clock.now, sleep: clock.sleep, project: () => project });
    for (let i = 0; i < 3; i += 1) expect(limiter.reserve()).toBe(0);
    clock.advance(1_000);
    expect(() => limiter.reserve()).toThrow(expect.objectContaining({ code: 'CLOUDFLARE_RATE_LIMITED', details: expect.objectContaining({ source: 'project-share', project: 'odin', projectLimit: 3, retryAfterSeconds: 59 }) }));
    project = 'consilio';
    for (let i = 0; i < 3; i += 1) expect(limiter.reserve()).toBe(0);
    project = null; // the service's own work has no cap of its own
    for (let i = 0; i < 4; i += 1) expect(limiter.reserve()).toBe(0);
    expect(limiter.stats().inWindow).toBe(10);
    // Once its oldest request leaves the window, the project has a slot again.
    clock.advance(59_000);
    project = 'odin';
    expect(limiter.reserve()).toBe(0);
  });

  it('a refused request takes no slot, of the project or of the window', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 4, windowMs: 60_000, projectShare: 0.5, now: clock.now, sleep: clock.sleep, project: () => 'odin' });
    limiter.reserve();
    limiter.reserve();
    for (let i = 0; i < 5; i += 1) expect(() => limiter.reserve()).toThrow();
    expect(limiter.stats().inWindow).toBe(2);
  });

  it('checks and spends a share in one step: 30 parallel requests of one project get exactly its share', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 60, windowMs: 300_000, projectShare: 0.2, now: clock.now, sleep: clock.sleep, project: () => 'odin' });
    const outcomes = await Promise.allSettled(Array.from({ length: 30 }, async () => {
      await Promise.resolve();
      await limiter.acquire();
    }));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(12);
    expect(limiter.stats().inWindow).toBe(12);
  });
});
