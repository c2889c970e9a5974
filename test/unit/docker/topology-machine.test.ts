import { createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { topologyMachine, type TopologyChangeHint, type TopologyEmitted, type TopologyEvent, type TopologyUpdate } from '../../../machines/topology.machine.ts';

/** The machine's own logic (queueing, coalescing, deadlines) with its effects supplied through `provide`. */

const unchanged: TopologyUpdate = { changed: false, summary: [] };

describe('topology machine', () => {
  it('coalesces hints that arrive while a batch is being applied into one next batch, without duplicates', async () => {
    const batches: TopologyChangeHint[][] = [];
    let release: () => void = () => undefined;
    let send: (event: TopologyEvent) => void = () => undefined;
    const machine = topologyMachine.provide({
      actors: {
        checkEngine: fromPromise<void>(async () => undefined),
        syncTopology: fromPromise(async () => unchanged),
        applyChanges: fromPromise<TopologyUpdate, { hints: TopologyChangeHint[] }>(async ({ input }) => {
          batches.push(input.hints);
          if (batches.length === 1) await new Promise<void>((resolve) => { release = resolve; });
          return { changed: true, summary: input.hints.map((h) => `${h.kind} ${h.id} ${h.action}`) };
        }),
        watchEvents: fromCallback(({ sendBack }) => { send = sendBack; return () => undefined; }),
      },
    });
    const actor = createActor(machine, { input: {} });
    const emitted: TopologyEmitted[] = [];
    actor.on('topology.changed', (e) => emitted.push(e));
    actor.start();
    await waitFor(actor, (s) => s.matches({ live: 'synced' }));
    send({ type: 'DOCKER.CHANGED', hint: { kind: 'container', id: 'a', action: 'start' } });
    await waitFor(actor, (s) => s.matches({ live: 'applying' }));
    for (const id of ['b', 'c', 'b']) send({ type: 'DOCKER.CHANGED', hint: { kind: 'container', id, action: 'die' } });
    expect(actor.getSnapshot().context.pending.map((h) => h.id)).toEqual(['b', 'c']);
    release();
    await waitFor(actor, (s) => s.matches({ live: 'synced' }) && batches.length === 2 && s.context.pending.length === 0);
    expect(batches.map((b) => b.map((h) => h.id))).toEqual([['a'], ['b', 'c']]);
    expect(emitted.map((e) => e.type === 'topology.changed' && e.version)).toEqual([1, 2]);
    actor.stop();
  });

  it('goes back to connecting (and a full sync) when the events stream closes', async () => {
    let syncs = 0;
    let send: (event: TopologyEvent) => void = () => undefined;
    const machine = topologyMachine.provide({
      actors: {
        checkEngine: fromPromise<void>(async () => undefined),
        syncTopology: fromPromise(async () => { syncs += 1; return unchanged; }),
        applyChanges: fromPromise(async () => unchanged),
        watchEvents: fromCallback(({ sendBack }) => { send = sendBack; return () => undefined; }),
      },
    });
    const actor = createActor(machine, { input: {} }).start();
    await waitFor(actor, (s) => s.matches({ live: 'synced' }));
    send({ type: 'DOCKER.STREAM_CLOSED', error: 'socket hang up' });
    await waitFor(actor, (s) => s.matches({ live: 'synced' }) && syncs === 2);
    expect(actor.getSnapshot().context.syncs).toBe(2);
    actor.stop();
  });

  it('keeps its retry deadline in context: a restored actor re-arms it on RECHECK', async () => {
    let engineUp = false;
    const machine = topologyMachine.provide({
      actors: {
        checkEngine: fromPromise<void>(async () => { if (!engineUp) throw new Error('connect ENOENT /var/run/docker.sock'); }),
        syncTopology: fromPromise(async () => unchanged),
        applyChanges: fromPromise(async () => unchanged),
        watchEvents: fromCallback(() => () => undefined),
      },
    });
    const first = createActor(machine, { input: { retryDelaysMs: [30] } }).start();
    await waitFor(first, (s) => s.matches('unavailable'));
    const persisted = first.getPersistedSnapshot();
    const retryAt = first.getSnapshot().context.retryAt!;
    first.stop();

    engineUp = true;
    await new Promise((resolve) => setTimeout(resolve, 60)); // the deadline passes while "down"
    const restored = createActor(machine, { input: {}, snapshot: persisted }).start();
    expect(restored.getSnapshot().context.retryAt).toBe(retryAt);
    // Pending `after` timers are not persisted: nothing happens until the actor is told to re-check.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(restored.getSnapshot().value).toBe('unavailable');
    restored.send({ type: 'RECHECK' });
    await waitFor(restored, (s) => s.matches({ live: 'synced' }), { timeout: 2_000 });
    expect(restored.getSnapshot().context).toMatchObject({ attempt: 0, retryAt: null, lastError: null });
    restored.stop();
  });
});
