import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise, type Actor } from 'xstate';
import {
  tunnelMachine,
  type ProbeLoopInput,
  type ReloadOutcome,
  type ReloadTunnelInput,
  type ReplaceTunnelInput,
  type ProbeSample,
  type StartTunnelInput,
  type StopTunnelInput,
  type WatchProcessInput,
  type TunnelEmitted,
  type TunnelEvent,
  type TunnelProcessInfo,
  type TunnelSettings,
} from '../../../machines/tunnel.machine.ts';

const SECOND = 1000;

const settings: TunnelSettings = {
  probeIntervalMs: 30 * SECOND,
  failuresBeforeRestart: 3,
  backoffMs: [5, 15, 30, 60, 300].map((s) => s * SECOND),
  resetAfterMs: 600 * SECOND,
  stopGraceMs: 10 * SECOND,
  autostart: true,
};

/**
 * The machine with scripted effects under vitest's fake clock: starts succeed or fail as scripted,
 * the probe loop probes every `probeIntervalMs` and answers with the scripted result.
 */
function harness(
  options: {
    startOutcomes?: ('ok' | 'fail')[];
    probe?: () => ProbeSample['result'];
    startDelayMs?: number;
    reloadMs?: number;
    reloadFails?: boolean;
    /** How an operator's replacement of a running tunnel ends: a new process, or a failure with the old one kept or gone. */
    replace?: 'ok' | 'fail-kept' | 'fail-gone';
  } = {},
) {
  const reloads: string[][] = [];
  const replaceCalls: (TunnelProcessInfo | null)[] = [];
  const startCalls: number[] = [];
  const stopCalls: { at: number; process: TunnelProcessInfo | null }[] = [];
  const outcomes = [...(options.startOutcomes ?? [])];
  let pid = 1000;
  let exit: ((event: TunnelEvent) => void) | null = null;
  const emitted: TunnelEmitted[] = [];
  const machine = tunnelMachine.provide({
    actors: {
      startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(async () => {
        startCalls.push(Date.now());
        if (options.startDelayMs) await new Promise((resolve) => setTimeout(resolve, options.startDelayMs));
        const outcome = outcomes.length > 0 ? outcomes.shift() : 'ok';
        if (outcome === 'fail') throw new Error('cloudflared did not become ready');
        pid += 1;
        return { pid, adopted: false };
      }),
      stopTunnel: fromPromise<void, StopTunnelInput>(async ({ input }) => {
        stopCalls.push({ at: Date.now(), process: input.process });
      }),
      watchProcess: fromCallback<TunnelEvent, WatchProcessInput>(({ sendBack }) => {
        exit = sendBack;
        return () => {
          exit = null;
        };
      }),
      probeLoop: fromCallback<TunnelEvent, ProbeLoopInput>(({ sendBack, input }) => {
        const timer = setInterval(() => {
          const result = options.probe?.() ?? 'ok';
          const sample: ProbeSample = { at: Date.now(), result, readyConnections: result === 'ok' ? 4 : result === 'degraded' ? 1 : null };
          sendBack({ type: result === 'ok' ? 'PROBE_OK' : result === 'degraded' ? 'PROBE_DEGRADED' : 'PROBE_FAILED', sample });
        }, input.intervalMs);
        return () => clearInterval(timer);
      }),
      reloadTunnel: fromPromise<ReloadOutcome, ReloadTunnelInput>(async ({ input }) => {
        reloads.push(input.requestIds);
        await new Promise((resolve) => setTimeout(resolve, options.reloadMs ?? 1000));
        if (options.reloadFails) throw Object.assign(new Error('cloudflared refused the file'), { details: { keptRunning: true } });
        pid += 1;
        return { process: { pid, adopted: false }, strategy: 'replica', durationMs: options.reloadMs ?? 1000 };
      }),
      replaceTunnel: fromPromise<TunnelProcessInfo, ReplaceTunnelInput>(async ({ input }) => {
        replaceCalls.push(input.process);
        await new Promise((resolve) => setTimeout(resolve, 500));
        if (options.replace === 'fail-kept') throw Object.assign(new Error('the new cloudflared refused the file'), { details: { keptRunning: true } });
        if (options.replace === 'fail-gone') throw new Error('the new cloudflared did not start');
        pid += 1;
        return { pid, adopted: false };
      }),
    },
  });
  const actor: Actor<typeof machine> = createActor(machine, { input: settings });
  actor.on('*', (event) => emitted.push(event));
  return {
    actor,
    startCalls,
    stopCalls,
    replaceCalls,
    emitted,
    reloads,
    crash: () => exit?.({ type: 'PROCESS_EXITED', code: 1, signal: null, reason: 'exited with code 1' }),
    state: () => actor.getSnapshot().value,
  };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-22T00:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('tunnel machine under a simulated clock', () => {
  it('backs off 5, 15, 30, 60, 300, 300, 300 s over 7 failed starts, then starts', async () => {
    const h = harness({ startOutcomes: ['fail', 'fail', 'fail', 'fail', 'fail', 'fail', 'fail', 'ok'] });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    const delays: number[] = [];
    for (let i = 0; i < 7; i += 1) {
      expect(h.state()).toBe('backoff');
      delays.push(h.actor.getSnapshot().context.currentDelayMs / SECOND);
      await vi.advanceTimersByTimeAsync(h.actor.getSnapshot().context.currentDelayMs);
    }
    expect(delays).toEqual([5, 15, 30, 60, 300, 300, 300]);
    const gaps = h.startCalls.slice(1).map((t, i) => (t - h.startCalls[i]!) / SECOND);
    expect(gaps).toEqual([5, 15, 30, 60, 300, 300, 300]);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.actor.getSnapshot().context.restartCount).toBe(7);
    expect(h.emitted.map((e) => e.type)).toEqual([...Array(7).fill('tunnel.down'), 'tunnel.recovered']);
  });

  it('does not start a backoff wait early', async () => {
    const h = harness({ startOutcomes: ['fail', 'fail'] });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(h.startCalls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.startCalls).toHaveLength(2);
  });

  it('restarts at once when the process exits, and backs off when it keeps crashing', async () => {
    const h = harness();
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toEqual({ running: 'up' });
    const firstPid = h.actor.getSnapshot().context.process?.pid;

    h.crash();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.startCalls).toHaveLength(2);
    expect(h.startCalls[1]).toBe(h.startCalls[0]);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.actor.getSnapshot().context.process?.pid).not.toBe(firstPid);
    expect(h.actor.getSnapshot().context.restartReason).toBe('process-exited');

    // A second crash within 10 minutes is a flapping tunnel: it waits on the schedule.
    await vi.advanceTimersByTimeAsync(60 * SECOND);
    h.crash();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toBe('backoff');
    expect(h.actor.getSnapshot().context.currentDelayMs).toBe(5 * SECOND);
    await vi.advanceTimersByTimeAsync(5 * SECOND);
    expect(h.state()).toEqual({ running: 'up' });
    h.crash();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.actor.getSnapshot().context.currentDelayMs).toBe(15 * SECOND);
  });

  it('resets the backoff after 10 minutes up', async () => {
    const h = harness({ startOutcomes: ['fail', 'fail', 'fail', 'ok'] });
    h.actor.start();
    await vi.advanceTimersByTimeAsync((5 + 15 + 30) * SECOND);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.actor.getSnapshot().context.backoffStep).toBe(3);

    await vi.advanceTimersByTimeAsync(599 * SECOND);
    expect(h.actor.getSnapshot().context.backoffStep).toBe(3);
    await vi.advanceTimersByTimeAsync(1 * SECOND);
    expect(h.actor.getSnapshot().context).toMatchObject({ backoffStep: 0, failureStreak: 0 });

    // After a stable period a crash restarts at once again.
    h.crash();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toEqual({ running: 'up' });
  });

  it('keeps climbing the schedule when the tunnel never stays up 10 minutes', async () => {
    const h = harness({ startOutcomes: ['fail', 'fail', 'ok', 'fail'] });
    h.actor.start();
    await vi.advanceTimersByTimeAsync((5 + 15) * SECOND);
    expect(h.state()).toEqual({ running: 'up' });
    await vi.advanceTimersByTimeAsync(120 * SECOND);
    h.crash(); // crash #1 of this streak is not at once: the streak is still running
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toBe('backoff');
    expect(h.actor.getSnapshot().context.currentDelayMs).toBe(30 * SECOND);
  });

  it('restarts after 3 consecutive failed probes, not after 2', async () => {
    let result: ProbeSample['result'] = 'ok';
    const h = harness({ probe: () => result });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(30 * SECOND);
    expect(h.actor.getSnapshot().context.lastOkProbeAt).toBe(Date.now());
    result = 'failed';
    await vi.advanceTimersByTimeAsync(60 * SECOND);
    expect(h.actor.getSnapshot().context.consecutiveFailures).toBe(2);
    expect(h.startCalls).toHaveLength(1);
    result = 'ok';
    await vi.advanceTimersByTimeAsync(30 * SECOND);
    expect(h.actor.getSnapshot().context.consecutiveFailures).toBe(0);
    result = 'failed';
    await vi.advanceTimersByTimeAsync(90 * SECOND);
    expect(h.startCalls).toHaveLength(2);
    expect(h.stopCalls).toHaveLength(1);
    expect(h.stopCalls[0]!.process?.pid).toBe(1001);
    expect(h.actor.getSnapshot().context.restartReason).toBe('probes-failed');
    expect(h.emitted.map((e) => e.type)).toContain('tunnel.down');
  });

  it('goes degraded on too few connections and back up when they return', async () => {
    let result: ProbeSample['result'] = 'degraded';
    const h = harness({ probe: () => result });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(30 * SECOND);
    expect(h.state()).toEqual({ running: 'degraded' });
    result = 'ok';
    await vi.advanceTimersByTimeAsync(30 * SECOND);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.emitted.map((e) => e.type)).toEqual(['tunnel.degraded', 'tunnel.recovered']);
  });

  it('RESTART works from every state and STOP stops', async () => {
    const h = harness({ startOutcomes: ['fail'] });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toBe('backoff');
    h.actor.send({ type: 'RESTART' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toEqual({ running: 'up' });
    h.actor.send({ type: 'RESTART' });
    await vi.advanceTimersByTimeAsync(500);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.actor.getSnapshot().context.restartReason).toBe('manual');
    h.actor.send({ type: 'STOP' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toBe('stopped');
    expect(h.actor.getSnapshot().context.process).toBeNull();
    h.actor.send({ type: 'RESTART' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toEqual({ running: 'up' });
  });

  it('an operator\'s RESTART of a running tunnel starts the new process before the old one stops (no outage, no stop)', async () => {
    const h = harness({ replace: 'ok' });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    const before = h.actor.getSnapshot().context.process!.pid;
    h.actor.send({ type: 'RESTART' });
    expect(h.state()).toBe('replacing');
    await vi.advanceTimersByTimeAsync(500);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.replaceCalls.map((process) => process?.pid)).toEqual([before]);
    expect(h.stopCalls).toHaveLength(0);
    expect(h.actor.getSnapshot().context).toMatchObject({ restartCount: 1, restartReason: 'manual', downSince: null });
    expect(h.actor.getSnapshot().context.process!.pid).not.toBe(before);
    expect(h.emitted).toEqual([expect.objectContaining({ type: 'tunnel.restarted', previousPid: before, outage: false })]);
  });

  it("an operator's RESTART during a reload waits for it, then replaces the process: no stop, no outage, the reload answered", async () => {
    const h = harness({ replace: 'ok', reloadMs: 1000 });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    h.actor.send({ type: 'RELOAD', requestId: 'r1' });
    expect(h.state()).toBe('reloading');
    h.actor.send({ type: 'RESTART' });
    // Not stopped halfway: the reload goes on, and the restart waits for it.
    expect(h.state()).toBe('reloading');
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.state()).toBe('replacing');
    const reloaded = h.actor.getSnapshot().context.process!.pid;
    expect(h.replaceCalls.map((process) => process?.pid)).toEqual([reloaded]);
    // A second operator's restart while the first replaces: the replacement under way answers both.
    h.actor.send({ type: 'RESTART' });
    expect(h.state()).toBe('replacing');
    await vi.advanceTimersByTimeAsync(500);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.replaceCalls).toHaveLength(1);
    expect(h.stopCalls).toHaveLength(0);
    expect(h.actor.getSnapshot().context).toMatchObject({ restartQueued: false, restartReason: 'manual', downSince: null });
    expect(h.actor.getSnapshot().context.process!.pid).not.toBe(reloaded);
    expect(h.emitted.map((event) => event.type)).toEqual(['tunnel.reloaded', 'tunnel.restarted']);
  });

  it('a replacement that fails with the old process serving leaves the tunnel as it was; one that leaves nothing restarts', async () => {
    const kept = harness({ replace: 'fail-kept' });
    kept.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    const before = kept.actor.getSnapshot().context.process!.pid;
    kept.actor.send({ type: 'RESTART' });
    await vi.advanceTimersByTimeAsync(500);
    expect(kept.state()).toEqual({ running: 'up' });
    expect(kept.actor.getSnapshot().context.process!.pid).toBe(before);
    expect(kept.actor.getSnapshot().context.lastError).toBe('the new cloudflared refused the file');

    const gone = harness({ replace: 'fail-gone' });
    gone.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    gone.actor.send({ type: 'RESTART' });
    await vi.advanceTimersByTimeAsync(500);
    expect(gone.stopCalls).toHaveLength(1);
    expect(gone.startCalls).toHaveLength(2);
    expect(gone.state()).toEqual({ running: 'up' });
  });

  it('an operator\'s restart starts a new failure streak: the next failure restarts at once, not after 300 s', async () => {
    // Issue 27: after a crash series, tunnel_restart, then a hang → backoff for 300 s (streak 7, step 6).
    const h = harness({ startOutcomes: ['fail', 'fail', 'fail', 'fail', 'fail', 'fail', 'ok'], replace: 'ok' });
    h.actor.start();
    await vi.advanceTimersByTimeAsync((5 + 15 + 30 + 60 + 300 + 300) * SECOND);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.actor.getSnapshot().context).toMatchObject({ failureStreak: 6, backoffStep: 6 });
    h.actor.send({ type: 'RESTART' });
    await vi.advanceTimersByTimeAsync(500);
    expect(h.actor.getSnapshot().context).toMatchObject({ failureStreak: 0, backoffStep: 0 });
    h.crash();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.actor.getSnapshot().context.restartReason).toBe('process-exited');
  });

  it('while backing off, the stopped process is not shown as the tunnel\'s pid', async () => {
    let result: ProbeSample['result'] = 'ok';
    const h = harness({ probe: () => result, startOutcomes: ['ok', 'fail'] });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    h.crash(); // the first failure restarts at once, and that start fails: backoff
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toBe('backoff');
    expect(h.actor.getSnapshot().context.process).toBeNull();
    await vi.advanceTimersByTimeAsync(5 * SECOND);
    // A hung process (3 failed probes) is stopped and, on a second failure in the streak, the tunnel backs off.
    result = 'failed';
    await vi.advanceTimersByTimeAsync(90 * SECOND);
    expect(h.state()).toBe('backoff');
    expect(h.actor.getSnapshot().context.process).toBeNull();
  });

  it('keeps the probe that found a fresh start ready as the last probe (status shows its connections at once)', async () => {
    const ready: ProbeSample = { at: Date.now(), result: 'ok', readyConnections: 4 };
    const machine = tunnelMachine.provide({
      actors: {
        startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(async () => ({ pid: 42, adopted: false, ready })),
        watchProcess: fromCallback<TunnelEvent, WatchProcessInput>(() => undefined),
        probeLoop: fromCallback<TunnelEvent, ProbeLoopInput>(() => undefined),
      },
    });
    const actor = createActor(machine, { input: settings });
    actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(actor.getSnapshot().context).toMatchObject({ lastProbe: ready, lastOkProbeAt: ready.at, process: { pid: 42, adopted: false } });
    expect(actor.getSnapshot().context.process).not.toHaveProperty('ready');
    actor.stop();
  });

  it('stays stopped without autostart until START', async () => {
    const machine = tunnelMachine;
    const actor = createActor(machine, { input: { ...settings, autostart: false } });
    actor.start();
    expect(actor.getSnapshot().value).toBe('stopped');
    actor.stop();
  });

  it('reloads a running tunnel on RELOAD and coalesces the requests that arrive meanwhile', async () => {
    const h = harness({ reloadMs: 1000 });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    const before = h.actor.getSnapshot().context.process!.pid;
    h.actor.send({ type: 'RELOAD', requestId: 'a' });
    expect(h.state()).toBe('reloading');
    h.actor.send({ type: 'RELOAD', requestId: 'b' });
    h.actor.send({ type: 'RELOAD', requestId: 'c' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.state()).toBe('reloading');
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.reloads).toEqual([['a'], ['b', 'c']]);
    expect(h.actor.getSnapshot().context.process!.pid).not.toBe(before);
    expect(h.actor.getSnapshot().context.reloadCount).toBe(2);
    const reloaded = h.emitted.filter((e) => e.type === 'tunnel.reloaded');
    expect(reloaded.map((e) => (e as { requestIds: string[] }).requestIds)).toEqual([['a'], ['b', 'c']]);
  });

  it('a refused reload keeps the old process and says so', async () => {
    const h = harness({ reloadFails: true, reloadMs: 10 });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    const before = h.actor.getSnapshot().context.process!.pid;
    h.actor.send({ type: 'RELOAD', requestId: 'x' });
    await vi.advanceTimersByTimeAsync(10);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.actor.getSnapshot().context.process!.pid).toBe(before);
    expect(h.emitted.at(-1)).toMatchObject({ type: 'tunnel.reload_failed', requestIds: ['x'], error: 'cloudflared refused the file', keptRunning: true });
  });

  it('answers a RELOAD at once when cloudflared is not running, and reloads after a start that was in flight', async () => {
    const h = harness({ startOutcomes: ['fail'], startDelayMs: 100, reloadMs: 10 });
    h.actor.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(h.state()).toBe('backoff');
    h.actor.send({ type: 'RELOAD', requestId: 'while-down' });
    expect(h.emitted.at(-1)).toMatchObject({ type: 'tunnel.reloaded', requestIds: ['while-down'], applied: 'on-next-start' });
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.state()).toBe('starting');
    h.actor.send({ type: 'RELOAD', requestId: 'while-starting' });
    await vi.advanceTimersByTimeAsync(100);
    expect(h.state()).toBe('reloading');
    await vi.advanceTimersByTimeAsync(10);
    expect(h.state()).toEqual({ running: 'up' });
    expect(h.reloads).toEqual([['while-starting']]);
  });

  it('a start that fails answers the reloads queued during it: the next start reads the file', async () => {
    const h = harness({ startOutcomes: ['fail'], startDelayMs: 100 });
    h.actor.start();
    h.actor.send({ type: 'RELOAD', requestId: 'queued' });
    await vi.advanceTimersByTimeAsync(100);
    expect(h.state()).toBe('backoff');
    expect(h.emitted.at(-1)).toMatchObject({ type: 'tunnel.reloaded', requestIds: ['queued'], applied: 'on-next-start' });
    expect(h.actor.getSnapshot().context.pendingReloads).toEqual([]);
  });
});

describe('tunnel machine across a restart of the manager', () => {
  it('a process found running after a restore is marked adopted (tunnel_get_status said adopted: false)', async () => {
    const h = harness();
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.actor.getSnapshot().context.process).toMatchObject({ adopted: false });
    const persisted = h.actor.getPersistedSnapshot();
    h.actor.stop();
    const restored = createActor(tunnelMachine.provide({ actors: { watchProcess: fromCallback(() => undefined), probeLoop: fromCallback(() => undefined) } }), {
      input: settings,
      snapshot: persisted,
    }).start();
    restored.send({ type: 'RECHECK' });
    expect(restored.getSnapshot().context.process).toMatchObject({ pid: 1001, adopted: true });
    restored.stop();
  });

  it('SHUTDOWN stops cloudflared, and the next manager (RECHECK after the restore) starts it at once', async () => {
    const h = harness();
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    h.actor.send({ type: 'SHUTDOWN' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.state()).toBe('stopped');
    expect(h.actor.getSnapshot().context.stoppedForShutdown).toBe(true);
    const persisted = h.actor.getPersistedSnapshot();
    h.actor.stop();

    let starts = 0;
    const restored = createActor(
      tunnelMachine.provide({
        actors: {
          startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(async () => {
            starts += 1;
            return { pid: 2000, adopted: false };
          }),
          watchProcess: fromCallback(() => undefined),
          probeLoop: fromCallback(() => undefined),
        },
      }),
      { input: settings, snapshot: persisted },
    ).start();
    restored.send({ type: 'RECHECK' });
    await vi.advanceTimersByTimeAsync(0);
    expect(starts).toBe(1);
    expect(restored.getSnapshot().value).toEqual({ running: 'up' });
    expect(restored.getSnapshot().context.stoppedForShutdown).toBe(false);
    restored.stop();
  });

  it('an operator STOP stays stopped after a restore', async () => {
    const h = harness();
    h.actor.start();
    await vi.advanceTimersByTimeAsync(0);
    h.actor.send({ type: 'STOP' });
    await vi.advanceTimersByTimeAsync(0);
    const persisted = h.actor.getPersistedSnapshot();
    h.actor.stop();
    const restored = createActor(tunnelMachine, { input: settings, snapshot: persisted }).start();
    restored.send({ type: 'RECHECK' });
    expect(restored.getSnapshot().value).toBe('stopped');
    restored.stop();
  });
});
