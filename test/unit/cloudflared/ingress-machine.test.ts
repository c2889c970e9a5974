import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import {
  ingressMachine,
  type IngressChange,
  type IngressEmitted,
  type ReloadInput,
  type ReloadOutput,
  type RenderInput,
  type RenderOutput,
  type RestoreInput,
  type RestoreOutput,
  type RollbackInput,
  type WriteInput,
  type WriteOutput,
} from '../../../machines/ingress.machine.ts';

/** A promise the test resolves or rejects when it wants. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const change = (n: number): IngressChange => ({ hostname: `h${n}.example.com`, action: 'add', project: 'alpha', target: `http://localhost:${3000 + n}`, requestId: `r${n}` });

/** A world of plain values behind the machine's actors: the "file" is a string, reloads are counted and gated. */
function world(options: { failReloadOf?: string; renderError?: Error; commitDuringReload?: boolean } = {}) {
  const state = { file: 'v0', good: 'v0', version: 0, renders: [] as IngressChange[][], reloads: [] as ReloadInput[], gates: [] as ReturnType<typeof deferred>[], restores: 0 };
  const machine = ingressMachine.provide({
    actors: {
      render: fromPromise<RenderOutput, RenderInput>(async ({ input }) => {
        if (options.renderError) throw options.renderError;
        state.renders.push(input.changes);
        return { content: `v${state.version + 1}`, basedOn: null };
      }),
      write: fromPromise<WriteOutput, WriteInput>(async ({ input }) => {
        const changed = input.rendered.content !== state.file;
        state.file = input.rendered.content;
        state.version += 1;
        // With commitDuringReload the write leaves the commit to the reload, as the real adapter does.
        return { changed, commit: options.commitDuringReload ? null : state.file, needsReload: changed };
      }),
      reload: fromPromise<ReloadOutput, ReloadInput>(async ({ input }) => {
        state.reloads.push(input);
        const gate = deferred();
        state.gates.push(gate);
        await gate.promise;
        if (options.failReloadOf && state.file === options.failReloadOf) throw Object.assign(new Error('cloudflared exited with status 1'), { code: 'RELOAD_FAILED', fix: 'look at the log' });
        return options.commitDuringReload && input.reason === 'apply' ? { commit: `commit-of-${state.file}` } : undefined;
      }),
      markGood: fromPromise<void, { commit: string | null }>(async () => {
        state.good = state.file;
      }),
      restoreLastGood: fromPromise<RestoreOutput, RestoreInput>(async () => {
        state.restores += 1;
        state.file = state.good;
        return { commit: state.good };
      }),
      rollback: fromPromise<WriteOutput, RollbackInput>(async ({ input }) => {
        state.file = input.commit;
        return { changed: true, commit: input.commit, needsReload: true };
      }),
    },
  });
  const actor = createActor(machine);
  const emitted: IngressEmitted[] = [];
  for (const type of ['ingress.applied', 'ingress.failed', 'ingress.restored', 'ingress.restore_failed'] as const) actor.on(type, (event) => emitted.push(event));
  actor.start();
  const openNextGate = async (): Promise<void> => {
    await waitFor(actor, () => state.gates.length > 0);
    state.gates.shift()?.resolve();
  };
  return { actor, state, emitted, openNextGate };
}

describe('ingress machine', () => {
  it('goes idle → rendering → writing → reloading → idle and reports the change as applied', async () => {
    const { actor, state, emitted, openNextGate } = world();
    actor.send({ type: 'CHANGE', change: change(1) });
    await waitFor(actor, (snapshot) => snapshot.matches('reloading'));
    await openNextGate();
    await waitFor(actor, (snapshot) => snapshot.matches('idle'));
    expect(state.reloads).toHaveLength(1);
    expect(state.good).toBe('v1');
    expect(emitted).toEqual([{ type: 'ingress.applied', changes: [change(1)], commit: 'v1', changed: true, reloaded: true, rollbackOf: null }]);
  });

  it('takes the commit made during the reload into the applied event and the context', async () => {
    const { actor, emitted, openNextGate } = world({ commitDuringReload: true });
    actor.send({ type: 'CHANGE', change: change(1) });
    await waitFor(actor, (snapshot) => snapshot.matches('reloading'));
    expect(actor.getSnapshot().context.written?.commit).toBeNull();
    await openNextGate();
    await waitFor(actor, (snapshot) => snapshot.matches('idle'));
    expect(emitted).toEqual([{ type: 'ingress.applied', changes: [change(1)], commit: 'commit-of-v1', changed: true, reloaded: true, rollbackOf: null }]);
    expect(actor.getSnapshot().context.lastCommit).toBe('commit-of-v1');
  });

  it('merges the changes that arrive during a reload into ONE next cycle', async () => {
    const { actor, state, emitted, openNextGate } = world();
    actor.send({ type: 'CHANGE', change: change(0) });
    await waitFor(actor, (snapshot) => snapshot.matches('reloading'));
    for (let n = 1; n <= 20; n += 1) actor.send({ type: 'CHANGE', change: change(n) });
    expect(actor.getSnapshot().context.pending).toHaveLength(20);
    await openNextGate();
    await openNextGate();
    await waitFor(actor, (snapshot) => snapshot.matches('idle'));
    expect(state.reloads).toHaveLength(2);
    expect(state.renders.map((changes) => changes.length)).toEqual([1, 20]);
    expect(emitted.map((event) => event.type === 'ingress.applied' && event.changes.length)).toEqual([1, 20]);
  });

  it('does not reload when the write changed nothing cloudflared would see', async () => {
    const { actor, state, emitted } = world();
    actor.send({ type: 'ROLLBACK', commit: 'v0' });
    await waitFor(actor, (snapshot) => snapshot.matches('reloading'));
    state.gates.shift()?.resolve();
    await waitFor(actor, (snapshot) => snapshot.matches('idle'));
    state.file = 'v1';
    state.version = 0;
    actor.send({ type: 'CHANGE', change: change(1) });
    await waitFor(actor, (snapshot) => snapshot.matches('idle') && emitted.length === 2);
    expect(state.reloads).toHaveLength(1);
    expect(emitted[1]).toMatchObject({ type: 'ingress.applied', changed: false, reloaded: false });
  });

  it('restores the last good file when a reload fails, reloads again and says so', async () => {
    const { actor, state, emitted, openNextGate } = world({ failReloadOf: 'v1' });
    actor.send({ type: 'CHANGE', change: change(1) });
    await openNextGate();
    await waitFor(actor, (snapshot) => snapshot.matches('reloadingRestored'));
    await openNextGate();
    await waitFor(actor, (snapshot) => snapshot.matches('idle'));
    expect(state.restores).toBe(1);
    expect(state.file).toBe('v0');
    expect(state.reloads.map((reload) => reload.reason)).toEqual(['apply', 'restore']);
    expect(emitted).toEqual([
      {
        type: 'ingress.restored',
        changes: [change(1)],
        failedCommit: 'v1',
        restoredCommit: 'v0',
        reloadError: { code: 'RELOAD_FAILED', message: 'cloudflared exited with status 1', fix: 'look at the log' },
      },
    ]);
    expect(actor.getSnapshot().context.lastError?.code).toBe('RELOAD_FAILED');
  });

  it('reports a render failure without writing or reloading', async () => {
    const { actor, state, emitted } = world({ renderError: Object.assign(new Error('hand edit is invalid'), { code: 'CONFIG_FILE_DRIFT', fix: 'fix the file' }) });
    actor.send({ type: 'CHANGE', change: change(1) });
    await waitFor(actor, () => emitted.length === 1);
    expect(actor.getSnapshot().value).toBe('idle');
    expect(state.reloads).toHaveLength(0);
    expect(emitted[0]).toMatchObject({ type: 'ingress.failed', stage: 'render', error: { code: 'CONFIG_FILE_DRIFT', fix: 'fix the file' } });
  });

  it('runs a rollback asked for during a cycle right after it', async () => {
    const { actor, state, emitted, openNextGate } = world();
    actor.send({ type: 'CHANGE', change: change(1) });
    await waitFor(actor, (snapshot) => snapshot.matches('reloading'));
    actor.send({ type: 'ROLLBACK', commit: 'v0' });
    await openNextGate();
    await openNextGate();
    await waitFor(actor, (snapshot) => snapshot.matches('idle'));
    expect(state.file).toBe('v0');
    expect(emitted.map((event) => (event.type === 'ingress.applied' ? event.rollbackOf : event.type))).toEqual([null, 'v0']);
  });
});
