import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { orphansMachine, type OrphanScanOutput, type OrphansEmitted } from '../../../machines/orphans.machine.ts';

beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-22T00:00:00Z') }));
afterEach(() => vi.useRealTimers());

const WEEK = 7 * 24 * 3_600_000;

function harness(outcomes: ('ok' | 'fail')[]) {
  const calls: number[] = [];
  const emitted: OrphansEmitted[] = [];
  const machine = orphansMachine.provide({
    actors: {
      scanOrphans: fromPromise<OrphanScanOutput, void>(async () => {
        calls.push(Date.now());
        if ((outcomes.shift() ?? 'ok') === 'fail') throw Object.assign(new Error('Cloudflare answered 503'), { code: 'CLOUDFLARE_UNAVAILABLE' });
        return { routes: 3, orphans: [{ hostname: 'old.153.se' }], newlyOrphaned: ['old.153.se'], resolved: [] };
      }),
    },
  });
  const actor = createActor(machine, { input: { intervalMs: WEEK, retryDelaysMs: [60_000, 300_000] } });
  actor.on('*', (event) => emitted.push(event));
  return { actor, calls, emitted, gaps: () => calls.map((at, i) => (i === 0 ? 0 : at - calls[i - 1]!)) };
}

describe('orphans machine', () => {
  it('scans on start, then once a week, and reports what it found', async () => {
    const h = harness([]);
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.actor.getSnapshot().value).toBe('waiting');
    expect(h.actor.getSnapshot().context).toMatchObject({ orphans: 1, nextScanAt: Date.now() + WEEK, lastError: null });
    await vi.advanceTimersByTimeAsync(WEEK - 1);
    expect(h.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.gaps()).toEqual([0, WEEK]);
    expect(h.emitted[0]).toMatchObject({ type: 'orphans.scanned', result: { newlyOrphaned: ['old.153.se'] } });
  });

  it('retries a scan that failed on its own schedule, then goes back to weekly', async () => {
    const h = harness(['fail', 'fail', 'ok']);
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.actor.getSnapshot().value).toBe('retrying');
    expect(h.emitted[0]).toMatchObject({ type: 'orphans.scan_failed', code: 'CLOUDFLARE_UNAVAILABLE', error: 'Cloudflare answered 503', retryInMs: 60_000 });
    await vi.advanceTimersByTimeAsync(60_000);
    await vi.advanceTimersByTimeAsync(300_000);
    expect(h.actor.getSnapshot().value).toBe('waiting');
    expect(h.gaps()).toEqual([0, 60_000, 300_000]);
    await vi.advanceTimersByTimeAsync(WEEK);
    expect(h.gaps()).toEqual([0, 60_000, 300_000, WEEK]);
  });

  it('scans on demand, and after a restore with the settings it is given', async () => {
    const h = harness([]);
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    h.actor.send({ type: 'SCAN' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls).toHaveLength(2);
    h.actor.send({ type: 'RECHECK', settings: { intervalMs: 3_600_000, retryDelaysMs: [1_000] } });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(h.calls).toHaveLength(4);
  });
});
