import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise, type EventObject } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import {
  tunnelMachine,
  type ProbeLoopInput,
  type ReloadOutcome,
  type ReloadTunnelInput,
  type ReplaceTunnelInput,
  type StartTunnelInput,
  type StopTunnelInput,
  type TunnelContext,
  type TunnelEvent,
  type TunnelProcessInfo,
  type TunnelSettings,
  type WatchProcessInput,
} from '../../machines/tunnel.machine.ts';

/**
 * Model-based tests generated from the machine itself: xstate/graph walks the machine's transitions and
 * yields the shortest path to every reachable state; each path is then replayed against the real actor,
 * whose effects are driven by controllable fakes. A new state or transition gets tests with no one writing them.
 */

const settings: TunnelSettings = {
  probeIntervalMs: 30_000,
  failuresBeforeRestart: 3,
  backoffMs: [5_000, 15_000],
  resetAfterMs: 600_000,
  stopGraceMs: 10_000,
  autostart: false,
};

const sample = (result: 'ok' | 'degraded' | 'failed') => ({ at: 0, result, readyConnections: result === 'failed' ? null : 4 });

// Every event the machine can receive, including the ones its invoked actors and timers produce.
const modelEvents: EventObject[] = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'SHUTDOWN' },
  { type: 'RESTART' },
  { type: 'RECHECK' },
  { type: 'RELOAD', requestId: 'r1' } as EventObject,
  { type: 'PROCESS_EXITED', code: 1, signal: null, reason: 'exited with code 1' } as EventObject,
  { type: 'PROBE_OK', sample: sample('ok') } as EventObject,
  { type: 'PROBE_DEGRADED', sample: sample('degraded') } as EventObject,
  { type: 'PROBE_FAILED', sample: sample('failed') } as EventObject,
  { type: 'xstate.done.actor.start', output: { pid: 7, adopted: false } } as EventObject,
  { type: 'xstate.error.actor.start', error: new Error('not ready') } as EventObject,
  { type: 'xstate.done.actor.stop' },
  { type: 'xstate.done.actor.stopForGood' },
  { type: 'xstate.done.actor.reload', output: { process: { pid: 8, adopted: false }, strategy: 'replica', durationMs: 5 } } as EventObject,
  { type: 'xstate.error.actor.reload', error: new Error('replica refused the file') } as EventObject,
  { type: 'xstate.done.actor.replace', output: { pid: 11, adopted: false } } as EventObject,
  // A replacement that failed with the old process still serving, and one that left nothing running.
  { type: 'xstate.error.actor.replace', error: Object.assign(new Error('replica refused the file'), { details: { keptRunning: true } }) } as EventObject,
  { type: 'xstate.error.actor.replace', error: new Error('the old process is gone too') } as EventObject,
  { type: 'xstate.after.backoffDelay.tunnel.backoff' },
];

/** The parts of context that decide where the machine goes next (the rest would make the graph infinite). */
function decisive(context: TunnelContext) {
  return {
    consecutiveFailures: context.consecutiveFailures,
    streak: Math.min(context.failureStreak, 2),
    delayed: context.currentDelayMs > 0,
    reloadsQueued: context.pendingReloads.length > 0,
    reloadsInFlight: context.reloadingFor.length > 0,
    stoppedForShutdown: context.stoppedForShutdown,
  };
}

// createTestModel refuses machines with invocations, so the paths come from the graph traversal directly.
const paths = getShortestPaths(tunnelMachine, {
  input: settings,
  events: modelEvents as never,
  serializeState: (state: { value: unknown; context: unknown }) => JSON.stringify({ value: state.value, ...decisive(state.context as TunnelContext) }),
}).map((path) => ({
  ...path,
  description: `reaches ${JSON.stringify(path.state.value)} ${JSON.stringify(decisive(path.state.context))} via ${
    path.steps.map((step) => step.event.type.replace(/^xstate\./, '')).join(' → ') || 'init'
  }`,
}));

/** The real actor with fakes whose outcomes the replay controls. */
function controllableActor() {
  let pendingStart: { resolve: (p: TunnelProcessInfo) => void; reject: (e: Error) => void } | null = null;
  let pendingStop: { resolve: () => void } | null = null;
  let pendingReload: { resolve: (outcome: ReloadOutcome) => void; reject: (e: Error) => void } | null = null;
  let pendingReplace: { resolve: (process: TunnelProcessInfo) => void; reject: (e: Error) => void } | null = null;
  let watch: ((event: TunnelEvent) => void) | null = null;
  let probe: ((event: TunnelEvent) => void) | null = null;
  const machine = tunnelMachine.provide({
    actors: {
      startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(
        () => new Promise((resolve, reject) => (pendingStart = { resolve, reject })),
      ),
      stopTunnel: fromPromise<void, StopTunnelInput>(() => new Promise<void>((resolve) => (pendingStop = { resolve }))),
      watchProcess: fromCallback<TunnelEvent, WatchProcessInput>(({ sendBack }) => {
        watch = sendBack;
        return () => (watch = null);
      }),
      probeLoop: fromCallback<TunnelEvent, ProbeLoopInput>(({ sendBack }) => {
        probe = sendBack;
        return () => (probe = null);
      }),
      reloadTunnel: fromPromise<ReloadOutcome, ReloadTunnelInput>(
        () => new Promise((resolve, reject) => (pendingReload = { resolve, reject })),
      ),
      replaceTunnel: fromPromise<TunnelProcessInfo, ReplaceTunnelInput>(
        () => new Promise((resolve, reject) => (pendingReplace = { resolve, reject })),
      ),
    },
  });
  const actor = createActor(machine, { input: settings });
  const need = <T>(value: T | null, what: string): T => {
    if (value === null) throw new Error(`the model sent an event that needs ${what}, but the actor has none in this state`);
    return value;
  };
  async function exec(event: EventObject): Promise<void> {
    switch (event.type) {
      case 'xstate.done.actor.start':
        need(pendingStart, 'a pending start').resolve((event as unknown as { output: TunnelProcessInfo }).output);
        pendingStart = null;
        break;
      case 'xstate.error.actor.start':
        need(pendingStart, 'a pending start').reject(new Error('not ready'));
        pendingStart = null;
        break;
      case 'xstate.done.actor.stop':
      case 'xstate.done.actor.stopForGood':
        need(pendingStop, 'a pending stop').resolve();
        pendingStop = null;
        break;
      case 'xstate.done.actor.reload':
        need(pendingReload, 'a pending reload').resolve((event as unknown as { output: ReloadOutcome }).output);
        pendingReload = null;
        break;
      case 'xstate.error.actor.reload':
        need(pendingReload, 'a pending reload').reject(new Error('replica refused the file'));
        pendingReload = null;
        break;
      case 'xstate.done.actor.replace':
        need(pendingReplace, 'a pending replacement').resolve((event as unknown as { output: TunnelProcessInfo }).output);
        pendingReplace = null;
        break;
      case 'xstate.error.actor.replace':
        need(pendingReplace, 'a pending replacement').reject((event as unknown as { error: Error }).error);
        pendingReplace = null;
        break;
      case 'xstate.after.backoffDelay.tunnel.backoff':
        await vi.advanceTimersByTimeAsync(actor.getSnapshot().context.currentDelayMs);
        return;
      case 'PROCESS_EXITED':
        need(watch, 'a process watcher')(event as TunnelEvent);
        break;
      case 'PROBE_OK':
      case 'PROBE_DEGRADED':
      case 'PROBE_FAILED':
        need(probe, 'a probe loop')(event as TunnelEvent);
        break;
      default:
        actor.send(event as TunnelEvent);
    }
    await vi.advanceTimersByTimeAsync(0);
  }
  /** Lets every effect the actor is waiting on complete (starts and reloads succeed, backoffs elapse) until it rests. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 30; i += 1) {
      if (pendingStart !== null) await exec({ type: 'xstate.done.actor.start', output: { pid: 9, adopted: false } } as EventObject);
      else if (pendingStop !== null) await exec({ type: 'xstate.done.actor.stop' });
      else if (pendingReload !== null) await exec({ type: 'xstate.done.actor.reload', output: { process: { pid: 10, adopted: false }, strategy: 'replica', durationMs: 5 } } as EventObject);
      else if (pendingReplace !== null) await exec({ type: 'xstate.done.actor.replace', output: { pid: 12, adopted: false } } as EventObject);
      else if (actor.getSnapshot().value === 'backoff') await exec({ type: 'xstate.after.backoffDelay.tunnel.backoff' });
      else return;
    }
    throw new Error(`the actor did not come to rest: ${JSON.stringify(actor.getSnapshot().value)}`);
  }
  return { actor, exec, settle };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-22T00:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});


describe('tunnel machine, model-based', () => {
  it('reaches every state of the machine', () => {
    const reached = new Set(paths.map((path) => JSON.stringify(path.state.value)));
    for (const value of ['stopped', 'starting', 'backoff', 'restarting', 'replacing', 'stopping', 'reloading', { running: 'up' }, { running: 'degraded' }]) {
      expect(reached, `no path reaches ${JSON.stringify(value)}`).toContain(JSON.stringify(value));
    }
    expect(paths.length).toBeGreaterThanOrEqual(10);
  });

  it.each(paths.map((path) => [path.description, path] as const))('%s', async (_description, path) => {
    const { actor, exec } = controllableActor();
    actor.start();
    await vi.advanceTimersByTimeAsync(0);
    for (const step of path.steps) {
      if ((step.event.type as string) !== 'xstate.init') await exec(step.event);
      const snapshot = actor.getSnapshot();
      expect(snapshot.value, `after ${step.event.type}`).toEqual(step.state.value);
      expect(decisive(snapshot.context), `after ${step.event.type}`).toEqual(decisive(step.state.context));
    }
    actor.stop();
  });
});

/**
 * Every way out of a state that holds a caller's reload request answers it. A RESTART that left `reloading` without
 * answering hung the ingress actor (and every later route request) until the manager restarted. Here every path that
 * ends with a request waiting (queued, or being served by a reload) is followed by each event the machine can
 * receive, then every effect is let complete: each RELOAD sent must have been answered exactly once, by
 * `tunnel.reloaded` or `tunnel.reload_failed`.
 */
describe('tunnel machine: every waiting reload request gets an answer', () => {
  const waiting = paths.filter((path) => {
    const context = path.state.context;
    return context.pendingReloads.length > 0 || context.reloadingFor.length > 0;
  });

  it('the model reaches states with requests waiting, queued and in flight', () => {
    expect(waiting.some((path) => path.state.context.reloadingFor.length > 0)).toBe(true);
    expect(waiting.some((path) => path.state.context.pendingReloads.length > 0)).toBe(true);
  });

  const cases = waiting.flatMap((path) => modelEvents.map((event) => [`${path.description}, then ${event.type.replace(/^xstate\./, '')}`, path, event] as const));

  it.each(cases)('%s', async (_description, path, event) => {
    const { actor, exec, settle } = controllableActor();
    const answered: string[] = [];
    actor.on('tunnel.reloaded', (emitted) => answered.push(...emitted.requestIds));
    actor.on('tunnel.reload_failed', (emitted) => answered.push(...emitted.requestIds));
    actor.start();
    await vi.advanceTimersByTimeAsync(0);
    let sent = 0;
    for (const step of path.steps) {
      if ((step.event.type as string) === 'xstate.init') continue;
      await exec(step.event);
      if (step.event.type === 'RELOAD') sent += 1;
    }
    try {
      await exec(event);
      if (event.type === 'RELOAD') sent += 1;
    } catch (error) {
      // The event needs an effect this state does not run (e.g. a probe result while stopping): not applicable.
      if (String(error).includes('the model sent an event that needs')) return;
      throw error;
    }
    await settle();
    // A request queued while stopped-by-operator is answered at once ("on next start"); nothing may stay waiting.
    expect(answered, `answers after ${event.type}; rests in ${JSON.stringify(actor.getSnapshot().value)}`).toHaveLength(sent);
    expect(actor.getSnapshot().context.pendingReloads).toEqual([]);
    expect(actor.getSnapshot().context.reloadingFor).toEqual([]);
    actor.stop();
  });
});
