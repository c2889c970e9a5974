import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise, type EventObject } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { routeMachine, type RouteContext, type RouteRequest, type StepInput } from '../../machines/route.machine.ts';

/**
 * The route saga, model-based: shortest paths to every state (for a provision and for a deprovision), each
 * replayed against the real actor whose steps are deferred promises the replay resolves or rejects.
 * Checks that every failure leads to `failed` through the compensations and that only a record this saga
 * created is ever deleted.
 */

const INVOKES = ['reserve', 'dns', 'ingress', 'ready', 'activate', 'markDeleting', 'removeRule', 'restore', 'deleteRecord', 'keep', 'removeIngress', 'deleteDns', 'release', 'forget'] as const;
const SOURCE_OF: Record<(typeof INVOKES)[number], string> = {
  reserve: 'reserveRoute',
  dns: 'ensureDnsRecord',
  ingress: 'applyIngress',
  ready: 'awaitTunnelReady',
  activate: 'activateRoute',
  markDeleting: 'markDeleting',
  removeRule: 'removeIngressRule',
  restore: 'restoreRoute',
  deleteRecord: 'deleteDnsRecord',
  keep: 'keepForRetry',
  removeIngress: 'removeIngressRule',
  deleteDns: 'deleteDnsRecord',
  release: 'releaseReservation',
  forget: 'forgetRoute',
};

const failure = { code: 'CLOUDFLARE_UNAVAILABLE', message: 'boom', fix: 'retry', details: {} };
const outputs: Record<string, unknown[]> = {
  dns: [{ recordId: 'rec-1', created: true }, { recordId: 'rec-1', created: false }],
  markDeleting: [
    { recordId: 'rec-1', created: true, previous: { status: 'active', service: 'http://localhost:3100' } },
    { recordId: null, created: false, previous: { status: 'active', service: 'http://localhost:3100' } },
  ],
  ingress: [{ commit: 'abc123' }],
  removeIngress: [{ commit: 'def456' }],
  removeRule: [{ commit: 'def456' }],
};

const events: EventObject[] = [
  ...INVOKES.flatMap((id) => [
    ...(outputs[id] ?? [undefined]).map((output) => ({ type: `xstate.done.actor.${id}`, output }) as EventObject),
    { type: `xstate.error.actor.${id}`, error: failure } as EventObject,
  ]),
  // The caller cancels: at any point of the walk.
  { type: 'CANCEL' },
];

function request(kind: RouteRequest['kind']): RouteRequest {
  return {
    requestId: 'req-1',
    kind,
    project: 'consilio',
    hostname: 'app.153.se',
    zoneId: 'zone-1',
    zoneName: '153.se',
    targetPort: 3100,
    service: 'http://localhost:3100',
    targetReason: 'host service',
    originRequest: null,
    expiresAt: null,
  };
}

const decisive = (context: RouteContext) => ({ dnsCreated: context.dnsCreated, failed: context.error !== null, cancelled: context.cancelled === true });

function pathsFor(kind: RouteRequest['kind']) {
  return getShortestPaths(routeMachine, {
    input: request(kind),
    events: events as never,
    serializeState: (state: { value: unknown; context: unknown }) => JSON.stringify({ value: state.value, ...decisive(state.context as RouteContext) }),
  }).map((path) => ({
    ...path,
    description: `${kind}: reaches ${JSON.stringify(path.state.value)} ${JSON.stringify(decisive(path.state.context))} via ${
      path.steps.map((step) => step.event.type.replace(/^xstate\.(done|error)\.actor\./, (_m, kind: string) => (kind === 'done' ? '✓' : '✗'))).join(' → ')
    }`,
  }));
}

function controllableActor(kind: RouteRequest['kind']) {
  const pending = new Map<string, { resolve: (value: unknown) => void; reject: (error: unknown) => void; input: StepInput }>();
  const calls: string[] = [];
  // One implementation per source; a source invoked by two states (the rule removal of a delete and of a
  // compensation) is told apart by the invoke id, which is the id in the model's events.
  const actors = Object.fromEntries(
    [...new Set(Object.values(SOURCE_OF))].map((source) => [
      source,
      fromPromise<unknown, StepInput>(({ input, self }) => {
        calls.push(self.id);
        return new Promise((resolve, reject) => pending.set(self.id, { resolve, reject, input }));
      }),
    ]),
  );
  const actor = createActor(routeMachine.provide({ actors: actors }), { input: request(kind) });
  async function exec(event: EventObject) {
    if (event.type === 'CANCEL') {
      calls.push('CANCEL');
      actor.send({ type: 'CANCEL' });
      await vi.advanceTimersByTimeAsync(0);
      return;
    }
    const [, outcome, , id] = event.type.split('.') as [string, 'done' | 'error', string, string];
    const step = pending.get(id);
    if (!step) throw new Error(`the model completes step ${id}, but the actor is not running it`);
    pending.delete(id);
    if (outcome === 'done') step.resolve((event as unknown as { output: unknown }).output);
    else step.reject((event as unknown as { error: unknown }).error);
    await vi.advanceTimersByTimeAsync(0);
  }
  return { actor, exec, calls, pending };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-22T00:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe.each(['provision', 'deprovision'] as const)('route saga, model-based (%s)', (kind) => {
  const paths = pathsFor(kind);

  it('reaches both final states', () => {
    const finals = new Set(paths.map((path) => JSON.stringify(path.state.value)));
    expect(finals).toContain('"done"');
    expect(finals).toContain('"failed"');
  });

  it.each(paths.map((path) => [path.description, path] as const))('%s', async (_description, path) => {
    const { actor, exec, calls } = controllableActor(kind);
    actor.start();
    await vi.advanceTimersByTimeAsync(0);
    for (const step of path.steps) {
      if ((step.event.type as string) !== 'xstate.init') await exec(step.event);
      expect(actor.getSnapshot().value).toEqual(step.state.value);
      expect(decisive(actor.getSnapshot().context)).toEqual(decisive(step.state.context));
    }
    const snapshot = actor.getSnapshot();
    // A record the saga did not create (or a route's record it did not find as ours) is never deleted.
    if (calls.includes('deleteDns') || calls.includes('deleteRecord')) expect(snapshot.context.dnsCreated).toBe(true);
    if (kind === 'deprovision' && snapshot.value === 'failed') {
      // A removal is refused (the row restored, nothing deleted) or kept for retry (rule gone, record not): never
      // a row forgotten while its record stays.
      expect(calls).not.toContain('forget');
      if (calls.includes('removeRule') && !calls.includes('deleteRecord')) expect(calls).not.toContain('keep');
      if (calls.includes('deleteRecord')) expect(calls).not.toContain('restore');
    }
    if (kind === 'provision' && calls.includes('CANCEL')) {
      // Once cancelled, no step forward starts: only the one running ends, then the undoing.
      const after = calls.slice(calls.indexOf('CANCEL') + 1);
      const running = calls[calls.indexOf('CANCEL') - 1];
      const forward = ['reserve', 'dns', 'ingress', 'ready', 'activate'];
      const activateStarted = running === 'activate';
      if (!activateStarted) expect(after.filter((step) => forward.includes(step))).toEqual([]);
      if (snapshot.status === 'done' && !activateStarted) expect(snapshot.value).toBe('failed');
    }
    if (snapshot.status === 'done') {
      const output = snapshot.output;
      expect(output.ok).toBe(snapshot.value === 'done' && output.error === null);
      if (snapshot.value === 'failed' && kind === 'provision' && calls.includes('dns')) {
        // Every provision failure after the reservation releases it.
        expect(calls).toContain('release');
      }
    }
    actor.stop();
  });
});

describe('route saga, the happy paths in full', () => {
  it('provision runs every step in order and reports their timings', async () => {
    const { actor, exec, calls } = controllableActor('provision');
    actor.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(5);
    await exec({ type: 'xstate.done.actor.reserve' });
    await vi.advanceTimersByTimeAsync(300);
    await exec({ type: 'xstate.done.actor.dns', output: { recordId: 'rec-9', created: true } } as EventObject);
    await exec({ type: 'xstate.done.actor.ingress', output: { commit: 'c0ffee' } } as EventObject);
    await exec({ type: 'xstate.done.actor.ready' });
    await exec({ type: 'xstate.done.actor.activate' });
    expect(actor.getSnapshot().value).toBe('done');
    expect(calls).toEqual(['reserve', 'dns', 'ingress', 'ready', 'activate']);
    const output = actor.getSnapshot().output!;
    expect(output).toMatchObject({ ok: true, dnsRecordId: 'rec-9', dnsCreated: true, commit: 'c0ffee' });
    expect(output.timings.map((t) => t.step)).toEqual(['reserve', 'dns', 'ingress', 'tunnelReady', 'activate']);
    expect(output.timings[1]!.ms).toBe(300);
  });

  it('a failed reload rolls back in reverse: rule removed, own record deleted, reservation released', async () => {
    const { actor, exec, calls } = controllableActor('provision');
    actor.start();
    await vi.advanceTimersByTimeAsync(0);
    await exec({ type: 'xstate.done.actor.reserve' });
    await exec({ type: 'xstate.done.actor.dns', output: { recordId: 'rec-9', created: true } } as EventObject);
    await exec({ type: 'xstate.error.actor.ingress', error: { code: 'RELOAD_FAILED', message: 'reload failed', fix: 'look', details: {} } } as EventObject);
    await exec({ type: 'xstate.done.actor.removeIngress', output: { commit: null } } as EventObject);
    await exec({ type: 'xstate.done.actor.deleteDns' });
    await exec({ type: 'xstate.done.actor.release' });
    expect(calls).toEqual(['reserve', 'dns', 'ingress', 'removeIngress', 'deleteDns', 'release']);
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().output).toMatchObject({ ok: false, error: { code: 'RELOAD_FAILED' } });
  });
});
