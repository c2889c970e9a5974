import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { zonesMachine, type RefreshInput, type RefreshOutput, type ZonesEmitted } from '../../../machines/zones.machine.ts';

beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-22T00:00:00Z') }));
afterEach(() => vi.useRealTimers());

function harness(outcomes: ('ok' | 'fail')[]) {
  const calls: { at: number; adopt: boolean }[] = [];
  const emitted: ZonesEmitted[] = [];
  const machine = zonesMachine.provide({
    actors: {
      refreshZones: fromPromise<RefreshOutput, RefreshInput>(async ({ input }) => {
        calls.push({ at: Date.now(), adopt: input.adopt });
        if ((outcomes.shift() ?? 'ok') === 'fail') throw new Error('Cloudflare answered 503');
        return { zones: 3, added: [], removed: [], adopted: input.adopt ? ['chat.153.se'] : [] };
      }),
    },
  });
  const actor = createActor(machine, { input: { refreshIntervalMs: 3_600_000, retryDelaysMs: [5_000, 30_000] } });
  actor.on('*', (event) => emitted.push(event));
  return { actor, calls, emitted };
}

describe('zones machine', () => {
  it('refreshes on start with adoption, then every interval without it', async () => {
    const h = harness([]);
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.actor.getSnapshot().value).toBe('ready');
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(h.calls.map((c) => c.adopt)).toEqual([true, false]);
    expect(h.emitted[0]).toMatchObject({ type: 'zones.refreshed', adopted: ['chat.153.se'] });
  });

  it('retries a failed refresh on the backoff schedule and keeps adoption pending until one succeeds', async () => {
    const h = harness(['fail', 'fail', 'ok']);
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.actor.getSnapshot().value).toBe('retrying');
    await vi.advanceTimersByTimeAsync(5_000);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(h.actor.getSnapshot().value).toBe('ready');
    expect(h.calls.map((c) => c.adopt)).toEqual([true, true, true]);
    expect(h.calls.map((c, i) => (i === 0 ? 0 : c.at - h.calls[i - 1]!.at))).toEqual([0, 5_000, 30_000]);
    expect(h.emitted.map((e) => e.type)).toEqual(['zones.refresh_failed', 'zones.refresh_failed', 'zones.refreshed']);
  });

  it('refreshes on demand', async () => {
    const h = harness([]);
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    h.actor.send({ type: 'REFRESH' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls).toHaveLength(2);
  });
});
