import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureLogs } from '../../helpers/log-capture.ts';
import { startRounds, type Rounds } from '../../../src/app/schedules/rounds.ts';

/**
 * The one periodic-job primitive every schedule uses (backups, retention, the publish-ahead watch, label routes, route
 * expiry, the heap trimmer), on Vitest's simulated clock: the cadence, the first round, no two rounds at once, and a
 * failed round that does not end the schedule.
 */

/** A round that waits until the test releases it, counting how many started. */
function blockingRound() {
  let started = 0;
  let release: () => void = () => undefined;
  const round = () => {
    started += 1;
    return new Promise<void>((resolve) => {
      release = resolve;
    });
  };
  return { round, started: () => started, release: () => release() };
}

describe('startRounds', () => {
  let rounds: Rounds | null = null;
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    rounds?.stop();
    rounds = null;
    vi.useRealTimers();
  });

  it('runs a round every interval, and the first one after firstAfterMs when given', async () => {
    const { logger } = captureLogs();
    let count = 0;
    rounds = startRounds(() => void (count += 1), { intervalMs: 1_000, firstAfterMs: 100, logger, what: 'counting' });
    await vi.advanceTimersByTimeAsync(100);
    expect(count).toBe(1);
    await vi.advanceTimersByTimeAsync(900);
    expect(count).toBe(2);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(count).toBe(4);
    rounds.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(count).toBe(4);
  });

  it('queues one more round when the timer fires during a round, unless skipWhenBusy', async () => {
    const { logger } = captureLogs();
    for (const skipWhenBusy of [false, true]) {
      const job = blockingRound();
      rounds = startRounds(job.round, { intervalMs: 1_000, skipWhenBusy, logger, what: 'blocking' });
      await vi.advanceTimersByTimeAsync(1_000);
      expect(job.started()).toBe(1);
      // Three more ticks while the first round runs: never a second round at once.
      await vi.advanceTimersByTimeAsync(3_000);
      expect(job.started()).toBe(1);
      job.release();
      await vi.advanceTimersByTimeAsync(0);
      // Queued: one more right after; skipped: none until the next tick.
      expect(job.started()).toBe(skipWhenBusy ? 1 : 2);
      job.release();
      rounds.stop();
    }
  });

  it('logs a failed round and runs the next one as planned', async () => {
    const { logger, lines } = captureLogs();
    let calls = 0;
    rounds = startRounds(
      () => {
        calls += 1;
        if (calls === 1) throw new Error('disk full');
      },
      { intervalMs: 1_000, logger, what: 'pruning old rows' },
    );
    await vi.advanceTimersByTimeAsync(1_000);
    logger.flush();
    expect(lines.join('')).toContain('pruning old rows failed; trying again at the next round');
    expect(lines.join('')).toContain('disk full');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(2);
  });

  it('runNow runs a round at once and resolves when it is done', async () => {
    const { logger } = captureLogs();
    let count = 0;
    rounds = startRounds(() => void (count += 1), { intervalMs: 60_000, logger, what: 'counting' });
    await rounds.runNow();
    expect(count).toBe(1);
  });
});
