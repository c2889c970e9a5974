import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fromCallback, fromPromise } from 'xstate';
import { supervisorMachine, type SupervisorSettings } from '../../../machines/supervisor.machine.ts';
import { tunnelMachine } from '../../../machines/tunnel.machine.ts';
import type { ProbeLoopInput, StartTunnelInput, StopTunnelInput, TunnelEvent, TunnelProcessInfo, WatchProcessInput } from '../../../machines/tunnel.machine.ts';
import { startDurableSupervisor } from '../../../src/app/actors/durable-supervisor.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { ActorRepository } from '../../../src/store/actor-repository.ts';

const SECOND = 1000;
const settings: SupervisorSettings = {
  topology: { resyncIntervalMs: 300_000, retryDelaysMs: [60_000] },
  zones: { refreshIntervalMs: 3_600_000, retryDelaysMs: [60_000] },
  orphans: { intervalMs: 7 * 24 * 3_600_000, retryDelaysMs: [60_000] },
  tunnel: {
    probeIntervalMs: 30 * SECOND,
    failuresBeforeRestart: 3,
    backoffMs: [5, 15, 30, 60, 300].map((s) => s * SECOND),
    resetAfterMs: 600 * SECOND,
    stopGraceMs: 10 * SECOND,
    autostart: true,
  },
};

/** The supervisor with a tunnel whose starts fail until `healthy` is set. */
function provided(world: { healthy: boolean; starts: number[] }) {
  return supervisorMachine.provide({
    actors: {
      tunnel: tunnelMachine.provide({
        actors: {
          startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(async () => {
            world.starts.push(Date.now());
            if (!world.healthy) throw new Error('connection refused');
            return { pid: 4242, adopted: false };
          }),
          stopTunnel: fromPromise<void, StopTunnelInput>(async () => undefined),
          watchProcess: fromCallback<TunnelEvent, WatchProcessInput>(() => undefined),
          probeLoop: fromCallback<TunnelEvent, ProbeLoopInput>(() => undefined),
        },
      }),
    },
  });
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-durable-'));
  vi.useFakeTimers({ now: new Date('2026-11-22T00:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

function tunnelOf(supervisor: ReturnType<typeof startDurableSupervisor>) {
  const child = supervisor.actor.getSnapshot().children.tunnel;
  if (!child) throw new Error('the supervisor has no tunnel child');
  return child.getSnapshot();
}

describe('durable supervisor', () => {
  it('persists a tunnel in backoff and, restored from the SQLite file, resumes the pending delay', async () => {
    const path = join(dir, 'tm.db');
    const world = { healthy: false, starts: [] as number[] };

    // First life: the start fails, the tunnel waits 5 s in backoff.
    let opened = openDatabase(path);
    let supervisor = startDurableSupervisor({
      machine: provided(world),
      settings,
      repository: new ActorRepository(opened.db),
      machineVersion: 'v-test',
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(tunnelOf(supervisor).value).toBe('backoff');
    await vi.advanceTimersByTimeAsync(2 * SECOND);
    supervisor.stop();
    opened.db.close();
    expect(world.starts).toHaveLength(1);

    // Everything is dropped; a second life restores from the file.
    world.healthy = true;
    opened = openDatabase(path);
    supervisor = startDurableSupervisor({
      machine: provided(world),
      settings,
      repository: new ActorRepository(opened.db),
      machineVersion: 'v-test',
    });
    expect(supervisor.boot.restored).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    const restored = tunnelOf(supervisor);
    expect(restored.value).toBe('backoff');
    expect(restored.context.backoffStep).toBe(1);
    expect(restored.context.lastError).toBe('connection refused');

    // 3 s were left of the 5 s wait: nothing before, a start right after.
    await vi.advanceTimersByTimeAsync(2_999);
    expect(world.starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(world.starts).toHaveLength(2);
    expect(tunnelOf(supervisor).value).toEqual({ running: 'up' });
    expect(tunnelOf(supervisor).context.restartCount).toBe(1);

    supervisor.stop();
    // The history spans both lives: the restored actor's first entry starts from no known state.
    const history = new ActorRepository(opened.db).recentTransitions(50, 'tunnel').reverse();
    expect(history.map((row) => [row.fromState, row.toState])).toEqual([
      [null, 'starting'],
      ['starting', 'backoff'],
      [null, 'backoff'],
      ['backoff', 'starting'],
      ['starting', 'running.up'],
    ]);
    opened.db.close();
  });

  it('starts fresh when the machine version changed, and says why', async () => {
    const path = join(dir, 'tm.db');
    const world = { healthy: true, starts: [] as number[] };
    let opened = openDatabase(path);
    let supervisor = startDurableSupervisor({ machine: provided(world), settings, repository: new ActorRepository(opened.db), machineVersion: 'old' });
    await vi.advanceTimersByTimeAsync(0);
    supervisor.stop();
    opened.db.close();

    opened = openDatabase(path);
    supervisor = startDurableSupervisor({ machine: provided(world), settings, repository: new ActorRepository(opened.db), machineVersion: 'new' });
    expect(supervisor.boot).toEqual({ restored: false, reason: 'persisted snapshot has machine version old, code has new' });
    await vi.advanceTimersByTimeAsync(0);
    expect(tunnelOf(supervisor).value).toEqual({ running: 'up' });
    supervisor.stop();
    opened.db.close();
  });

  it('keeps a manual STOP across a restart: a stopped tunnel is not started again', async () => {
    const path = join(dir, 'tm.db');
    const world = { healthy: true, starts: [] as number[] };
    let opened = openDatabase(path);
    let supervisor = startDurableSupervisor({ machine: provided(world), settings, repository: new ActorRepository(opened.db), machineVersion: 'v' });
    await vi.advanceTimersByTimeAsync(0);
    supervisor.actor.getSnapshot().children.tunnel!.send({ type: 'STOP' });
    await vi.advanceTimersByTimeAsync(0);
    expect(tunnelOf(supervisor).value).toBe('stopped');
    supervisor.stop();
    opened.db.close();

    opened = openDatabase(path);
    supervisor = startDurableSupervisor({ machine: provided(world), settings, repository: new ActorRepository(opened.db), machineVersion: 'v' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(tunnelOf(supervisor).value).toBe('stopped');
    expect(world.starts).toHaveLength(1);
    supervisor.stop();
    opened.db.close();
  });

  it('writes snapshots debounced while running, so another process can read the current state', async () => {
    const path = join(dir, 'tm.db');
    const world = { healthy: false, starts: [] as number[] };
    const opened = openDatabase(path);
    const supervisor = startDurableSupervisor({ machine: provided(world), settings, repository: new ActorRepository(opened.db), machineVersion: 'v', debounceMs: 100 });
    await vi.advanceTimersByTimeAsync(150);
    const reader = openDatabase(path);
    const stored = new ActorRepository(reader.db).loadSnapshot('supervisor');
    const children = (stored!.snapshot as { children: Record<string, { snapshot: { value: unknown } }> }).children;
    expect(children.tunnel!.snapshot.value).toBe('backoff');
    reader.db.close();
    supervisor.stop();
    opened.db.close();
  });
});
