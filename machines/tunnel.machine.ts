import { assign, emit, enqueueActions, fromCallback, fromPromise, setup } from 'xstate';
import { errorText, keptRunning, notProvided, now } from './shared.ts';

/**
 * Lifecycle of cloudflared. What each state does is in its `description`; the diagram is in docs/machines.md.
 *
 * Effects are injected with `.provide()`: `startTunnel`, `stopTunnel`, `reloadTunnel`, `replaceTunnel` (promises),
 * `watchProcess` and `probeLoop` (callbacks that send PROCESS_EXITED / PROBE_* back). Wall time is read only in named actions.
 * XState does not persist pending `after` timers: the backoff deadline lives in context (`backoffUntil`)
 * and a RECHECK event re-arms it after a restore.
 */

export interface TunnelSettings {
  /** How often the probe loop probes; the loop itself is injected. */
  probeIntervalMs: number;
  /** Consecutive failed probes that make a restart. */
  failuresBeforeRestart: number;
  /** Waits after the 1st, 2nd, … consecutive failure; the last one repeats. */
  backoffMs: number[];
  /** Up this long without failure resets the failure streak and the backoff. */
  resetAfterMs: number;
  /** SIGTERM, then SIGKILL after this long. */
  stopGraceMs: number;
  /** Start cloudflared when the actor is first created (not on restore: the snapshot holds the intent). */
  autostart: boolean;
}

export interface TunnelProcessInfo {
  pid: number | null;
  adopted: boolean;
  handle?: string;
  /** A start's output only: the probe that found the new process ready (kept as the last probe, not in `process`). */
  ready?: ProbeSample;
}

export interface ProbeSample {
  at: number;
  result: 'ok' | 'degraded' | 'failed';
  readyConnections: number | null;
  error?: string;
}

export interface TunnelContext {
  settings: TunnelSettings;
  process: TunnelProcessInfo | null;
  /** Number of (re)starts after the first one. */
  restartCount: number;
  upSince: number | null;
  downSince: number | null;
  lastOkProbeAt: number | null;
  lastProbe: ProbeSample | null;
  consecutiveFailures: number;
  /** Consecutive failures since the tunnel was last stable. */
  failureStreak: number;
  /** Backoff waits taken since the tunnel was last stable (index into backoffMs). */
  backoffStep: number;
  currentDelayMs: number;
  backoffUntil: number | null;
  lastError: string | null;
  /** Why the last restart happened. */
  restartReason: 'process-exited' | 'probes-failed' | 'manual' | null;
  /** Reload requests waiting for the tunnel to be running (they coalesce into one reload). */
  pendingReloads: string[];
  /** The reload requests the current reload serves. */
  reloadingFor: string[];
  reloadCount: number;
  /** An operator's RESTART came during a reload: the running tunnel is replaced once the reload is over (no outage). */
  restartQueued: boolean;
  /**
   * cloudflared was stopped by the manager's own clean shutdown (SHUTDOWN), not by an operator or a crash: the next
   * start of the manager starts it at once, with no backoff and no failure counted.
   */
  stoppedForShutdown: boolean;
}

export interface ReloadOutcome {
  process: TunnelProcessInfo;
  /** replica: a second cloudflared took over; restart: stop then start; remote: pushed through the API. */
  strategy: 'replica' | 'restart' | 'remote';
  fallbackReason?: string;
  durationMs: number;
}

export type TunnelEvent =
  | { type: 'START' }
  | { type: 'STOP' }
  /** The manager is shutting down cleanly and stops cloudflared with it (child driver, sandbox). */
  | { type: 'SHUTDOWN' }
  | { type: 'RESTART' }
  /** The ingress file changed: cloudflared must load it (it does not hot-reload). */
  | { type: 'RELOAD'; requestId: string }
  | { type: 'RECHECK'; settings?: TunnelSettings }
  | { type: 'PROCESS_EXITED'; code: number | null; signal: string | null; reason: string }
  | { type: 'PROBE_OK'; sample: ProbeSample }
  | { type: 'PROBE_DEGRADED'; sample: ProbeSample }
  | { type: 'PROBE_FAILED'; sample: ProbeSample };

/** Inputs of the injected actors. */
export interface StartTunnelInput { settings: TunnelSettings }
export interface StopTunnelInput { graceMs: number; process: TunnelProcessInfo | null }
export interface WatchProcessInput { process: TunnelProcessInfo | null }
/**
 * `lastProbe`: the last probe taken; the loop keeps its cadence (a reload or a restart does not reset it), and checks
 * again soon after a degraded one (a process that just took over may still be opening connections).
 */
export interface ProbeLoopInput { intervalMs: number; process: TunnelProcessInfo | null; lastProbe: Pick<ProbeSample, 'at' | 'result'> | null }
export interface ReloadTunnelInput { process: TunnelProcessInfo | null; requestIds: string[]; settings: TunnelSettings }
export interface ReplaceTunnelInput { process: TunnelProcessInfo | null; settings: TunnelSettings }

/** Events the tunnel emits for the outside world (event log, MCP notifications). */
export type TunnelEmitted =
  | { type: 'tunnel.down'; reason: string; at: number }
  | { type: 'tunnel.degraded'; readyConnections: number | null; at: number }
  | { type: 'tunnel.recovered'; downForMs: number | null; pid: number | null; at: number }
  | { type: 'tunnel.reloaded'; requestIds: string[]; applied: 'now' | 'on-next-start'; outcome: Omit<ReloadOutcome, 'process'> | null; pid: number | null; at: number }
  /** An operator's restart that started the new cloudflared before stopping the old one: no outage. */
  | { type: 'tunnel.restarted'; previousPid: number | null; pid: number | null; outage: false; at: number }
  | { type: 'tunnel.reload_failed'; requestIds: string[]; error: string; keptRunning: boolean; at: number };

function backoffAt(settings: TunnelSettings, step: number): number {
  const schedule = settings.backoffMs;
  return schedule[Math.min(step, schedule.length - 1)] ?? 0;
}

function isStable(context: TunnelContext, at: number): boolean {
  return context.upSince !== null && at - context.upSince >= context.settings.resetAfterMs;
}

export const tunnelMachine = setup({
  types: {
    context: {} as TunnelContext,
    events: {} as TunnelEvent,
    input: {} as TunnelSettings,
    emitted: {} as TunnelEmitted,
  },
  actors: {
    startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(async () => notProvided('tunnel', 'startTunnel')),
    stopTunnel: fromPromise<void, StopTunnelInput>(async () => notProvided('tunnel', 'stopTunnel')),
    watchProcess: fromCallback<TunnelEvent, WatchProcessInput>(() => undefined),
    probeLoop: fromCallback<TunnelEvent, ProbeLoopInput>(() => undefined),
    reloadTunnel: fromPromise<ReloadOutcome, ReloadTunnelInput>(async () => notProvided('tunnel', 'reloadTunnel')),
    replaceTunnel: fromPromise<TunnelProcessInfo, ReplaceTunnelInput>(async () => notProvided('tunnel', 'replaceTunnel')),
  },
  guards: {
    autostart: ({ context }) => context.settings.autostart,
    probeFailuresReachLimit: ({ context }) => context.consecutiveFailures + 1 >= context.settings.failuresBeforeRestart,
    restartAtOnce: ({ context }) => context.currentDelayMs <= 0,
    hasPendingReloads: ({ context }) => context.pendingReloads.length > 0,
    restartQueued: ({ context }) => context.restartQueued,
    stoppedForShutdown: ({ context }) => context.stoppedForShutdown,
    keptRunning: (_, params: { error: unknown }) => keptRunning(params.error),
  },
  delays: {
    backoffDelay: ({ context }) => Math.max(0, (context.backoffUntil ?? 0) - now()),
    stableAfter: ({ context }) => Math.max(0, (context.upSince ?? now()) + context.settings.resetAfterMs - now()),
  },
  actions: {
    recordStarted: assign(({ context }, params: { process: TunnelProcessInfo }) => ({
      process: { pid: params.process.pid, adopted: params.process.adopted, ...(params.process.handle ? { handle: params.process.handle } : {}) },
      lastProbe: params.process.ready ?? context.lastProbe,
      lastOkProbeAt: params.process.ready?.result === 'ok' ? params.process.ready.at : context.lastOkProbeAt,
      upSince: now(),
      downSince: null,
      consecutiveFailures: 0,
      currentDelayMs: 0,
      backoffUntil: null,
      lastError: null,
    })),
    /** After a start: tell the world the tunnel is back, if it was down (the first start is not a recovery). */
    emitRecoveredIfDown: enqueueActions(({ context, enqueue }, params: { process: TunnelProcessInfo | undefined }) => {
      if (context.downSince === null) return;
      enqueue.emit({ type: 'tunnel.recovered', downForMs: now() - context.downSince, pid: params.process?.pid ?? null, at: now() });
    }),
    emitHealthyAgain: emit(({ context }) => ({
      type: 'tunnel.recovered' as const,
      downForMs: null,
      pid: context.process?.pid ?? null,
      at: now(),
    })),
    /** A failed start always waits on the backoff schedule. */
    recordStartFailure: assign(({ context }, params: { error: unknown }) => {
      const at = now();
      const stable = isStable(context, at);
      const backoffStep = stable ? 0 : context.backoffStep;
      const delay = backoffAt(context.settings, backoffStep);
      return {
        process: null,
        upSince: null,
        downSince: context.downSince ?? at,
        failureStreak: (stable ? 0 : context.failureStreak) + 1,
        backoffStep: backoffStep + 1,
        currentDelayMs: delay,
        backoffUntil: at + delay,
        lastError: errorText(params.error),
      };
    }),
    /** A crash or failed probes: at once the first time, then on the backoff schedule. */
    recordRuntimeFailure: assign(({ context, event }) => {
      const at = now();
      const stable = isStable(context, at);
      const failureStreak = (stable ? 0 : context.failureStreak) + 1;
      const backoffStep = stable ? 0 : context.backoffStep;
      const atOnce = failureStreak === 1;
      const delay = atOnce ? 0 : backoffAt(context.settings, backoffStep);
      const reason =
        event.type === 'PROCESS_EXITED'
          ? `cloudflared ${event.reason}`
          : `${context.settings.failuresBeforeRestart} consecutive health probes failed${
              event.type === 'PROBE_FAILED' && event.sample.error ? ` (last: ${event.sample.error})` : ''
            }`;
      return {
        upSince: null,
        downSince: context.downSince ?? at,
        failureStreak,
        backoffStep: atOnce ? backoffStep : backoffStep + 1,
        currentDelayMs: delay,
        backoffUntil: null,
        consecutiveFailures: 0,
        lastError: reason,
        restartReason: event.type === 'PROCESS_EXITED' ? ('process-exited' as const) : ('probes-failed' as const),
        process: event.type === 'PROCESS_EXITED' ? null : context.process,
      };
    }),
    emitDown: emit(({ context }) => ({ type: 'tunnel.down' as const, reason: context.lastError ?? 'unknown', at: now() })),
    /** An operator's restart starts a new streak: whatever failed before, the next failure restarts at once. */
    recordManualRestart: assign({ currentDelayMs: 0, backoffUntil: null, restartReason: 'manual' as const, failureStreak: 0, backoffStep: 0, restartQueued: false }),
    queueRestart: assign({ restartQueued: true }),
    /** Backing off: nothing runs (the stopped process is not shown as the tunnel's pid). */
    armBackoff: assign(({ context }) => ({ backoffUntil: now() + context.currentDelayMs, process: null })),
    emitRestarted: emit(({ context }, params: { process: TunnelProcessInfo }) => ({
      type: 'tunnel.restarted' as const,
      previousPid: context.process?.pid ?? null,
      pid: params.process.pid,
      outage: false as const,
      at: now(),
    })),
    recordReplaceFailed: assign((_, params: { error: unknown }) => ({ lastError: errorText(params.error) })),
    countRestart: assign(({ context }) => ({ restartCount: context.restartCount + 1 })),
    recordProbe: assign(({ context }, params: { sample: ProbeSample }) => {
      const { sample } = params;
      return {
        lastProbe: sample,
        lastOkProbeAt: sample.result === 'failed' ? context.lastOkProbeAt : sample.at,
        consecutiveFailures: sample.result === 'failed' ? context.consecutiveFailures + 1 : 0,
      };
    }),
    emitDegraded: emit((_, params: { sample: ProbeSample }) => ({
      type: 'tunnel.degraded' as const,
      readyConnections: params.sample.readyConnections,
      at: now(),
    })),
    resetStreak: assign({ failureStreak: 0, backoffStep: 0 }),
    resetStreakIfStable: assign(({ context }) =>
      isStable(context, now()) ? { failureStreak: 0, backoffStep: 0 } : {},
    ),
    /** RECHECK may bring new settings; without them the current ones stay. */
    applySettings: assign(({ context, event }) => ({
      settings: (event.type === 'RECHECK' ? event.settings : undefined) ?? context.settings,
    })),
    recordStopped: assign({ process: null, upSince: null, currentDelayMs: 0, backoffUntil: null, consecutiveFailures: 0 }),
    queueReload: assign(({ context }, params: { requestId: string }) => ({
      pendingReloads: [...context.pendingReloads, params.requestId],
    })),
    /** Not running: the next start reads the file as it is, so the request is answered at once. */
    answerReloadOnNextStart: emit((_, params: { requestId: string }) => ({
      type: 'tunnel.reloaded' as const,
      requestIds: [params.requestId],
      applied: 'on-next-start' as const,
      outcome: null,
      pid: null,
      at: now(),
    })),
    /** A failed start: the queued reload requests are served by the next start, which reads the file as it is. */
    answerPendingOnNextStart: enqueueActions(({ context, enqueue }) => {
      if (context.pendingReloads.length === 0) return;
      enqueue.emit({ type: 'tunnel.reloaded', requestIds: context.pendingReloads, applied: 'on-next-start', outcome: null, pid: null, at: now() });
      enqueue.assign({ pendingReloads: [] });
    }),
    takePendingReloads: assign(({ context }) => ({ reloadingFor: context.pendingReloads, pendingReloads: [] })),
    recordReloaded: assign(({ context }, params: { outcome: ReloadOutcome }) => ({
      process: params.outcome.process,
      reloadCount: context.reloadCount + 1,
      consecutiveFailures: 0,
    })),
    emitReloaded: emit(({ context }, params: { outcome: ReloadOutcome }) => {
      const { process, ...outcome } = params.outcome;
      return { type: 'tunnel.reloaded' as const, requestIds: context.reloadingFor, applied: 'now' as const, outcome, pid: process.pid, at: now() };
    }),
    emitReloadFailed: emit(({ context }, params: { error: unknown }) => ({
      type: 'tunnel.reload_failed' as const,
      requestIds: context.reloadingFor,
      error: errorText(params.error),
      // The driver says whether the previous process kept serving its file (a refused replica never took over).
      keptRunning: keptRunning(params.error),
      at: now(),
    })),
    clearReloading: assign({ reloadingFor: [] as string[] }),
    /**
     * A restart or stop overtakes whatever reload is running or queued: every waiting request is answered, never
     * dropped. The process that starts next reads config.yml as it is, so they are applied on the next start.
     */
    answerWaitingReloads: enqueueActions(({ context, enqueue }) => {
      const requestIds = [...context.reloadingFor, ...context.pendingReloads];
      if (requestIds.length === 0) return;
      enqueue.emit({ type: 'tunnel.reloaded', requestIds, applied: 'on-next-start', outcome: null, pid: null, at: now() });
      enqueue.assign({ reloadingFor: [], pendingReloads: [] });
    }),
    markStoppedForShutdown: assign({ stoppedForShutdown: true }),
    markProcessAdopted: assign(({ context }) => (context.process ? { process: { ...context.process, adopted: true } } : {})),
    clearStoppedForShutdown: assign({ stoppedForShutdown: false }),
  },
}).createMachine({
  id: 'tunnel',
  context: ({ input }) => ({
    settings: input,
    process: null,
    restartCount: 0,
    upSince: null,
    downSince: null,
    lastOkProbeAt: null,
    lastProbe: null,
    consecutiveFailures: 0,
    failureStreak: 0,
    backoffStep: 0,
    currentDelayMs: 0,
    backoffUntil: null,
    lastError: null,
    restartReason: null,
    pendingReloads: [],
    reloadingFor: [],
    reloadCount: 0,
    restartQueued: false,
    stoppedForShutdown: false,
  }),
  initial: 'booting',
  on: {
    RESTART: { target: '.restarting', actions: ['answerWaitingReloads', 'recordManualRestart'] },
    STOP: { target: '.stopping', actions: ['answerWaitingReloads', 'clearStoppedForShutdown'] },
    SHUTDOWN: { target: '.stopping', actions: ['answerWaitingReloads', 'markStoppedForShutdown'] },
  },
  states: {
    booting: {
      description: 'Decides once, when the actor is created: start cloudflared if autostart is set, else stay stopped.',
      always: [{ guard: 'autostart', target: 'starting' }, { target: 'stopped' }],
    },
    stopped: {
      description: 'cloudflared is not running: stopped by an operator (waits for START), or by the manager\'s clean shutdown (started again at once when the next manager re-checks).',
      on: {
        START: { target: 'starting', actions: 'clearStoppedForShutdown' },
        RECHECK: [
          { guard: 'stoppedForShutdown', target: 'starting', actions: ['applySettings', 'clearStoppedForShutdown'] },
          { actions: 'applySettings' },
        ],
        RELOAD: { actions: { type: 'answerReloadOnNextStart', params: ({ event }) => ({ requestId: event.requestId }) } },
        // Already stopped: an operator's stop stays an operator's stop.
        SHUTDOWN: {},
      },
    },
    starting: {
      description: 'Starts cloudflared. A failed start waits in backoff. RELOAD requests wait and run once it is up, since the starting process may have read the file before the change.',
      invoke: {
        id: 'start',
        src: 'startTunnel',
        input: ({ context }) => ({ settings: context.settings }),
        onDone: {
          target: 'running',
          actions: [
            { type: 'emitRecoveredIfDown', params: ({ event }) => ({ process: event.output }) },
            { type: 'recordStarted', params: ({ event }) => ({ process: event.output }) },
          ],
        },
        onError: {
          target: 'backoff',
          actions: [{ type: 'recordStartFailure', params: ({ event }) => ({ error: event.error }) }, 'emitDown', 'answerPendingOnNextStart'],
        },
      },
      // The starting process may have read the file before the change: reload once it runs.
      on: {
        RECHECK: { actions: 'applySettings' },
        RELOAD: { actions: { type: 'queueReload', params: ({ event }) => ({ requestId: event.requestId }) } },
      },
    },
    running: {
      description: 'cloudflared runs: its process is watched and its health probed. It restarts when the process exits or after failuresBeforeRestart failed probes in a row. Up for resetAfterMs without a failure clears the failure streak and the backoff.',
      invoke: [
        { id: 'watch', src: 'watchProcess', input: ({ context }) => ({ process: context.process }) },
        {
          id: 'probe',
          src: 'probeLoop',
          input: ({ context }) => ({
            intervalMs: context.settings.probeIntervalMs,
            process: context.process,
            lastProbe: context.lastProbe ? { at: context.lastProbe.at, result: context.lastProbe.result } : null,
          }),
        },
      ],
      after: { stableAfter: { actions: 'resetStreak' } },
      always: [
        { guard: 'hasPendingReloads', target: 'reloading' },
        { guard: 'restartQueued', target: 'replacing', actions: 'recordManualRestart' },
      ],
      on: {
        RELOAD: { target: 'reloading', actions: { type: 'queueReload', params: ({ event }) => ({ requestId: event.requestId }) } },
        // An operator's restart of a running tunnel: the new process first, then the old one stops (no outage).
        RESTART: { target: 'replacing', actions: 'recordManualRestart' },
        PROCESS_EXITED: { target: 'restarting', actions: ['recordRuntimeFailure', 'emitDown'] },
        PROBE_FAILED: [
          {
            guard: 'probeFailuresReachLimit',
            target: 'restarting',
            actions: [{ type: 'recordProbe', params: ({ event }) => ({ sample: event.sample }) }, 'recordRuntimeFailure', 'emitDown'],
          },
          { actions: { type: 'recordProbe', params: ({ event }) => ({ sample: event.sample }) } },
        ],
        // Only sent after a restore: the process running now was started by an earlier manager and adopted.
        RECHECK: { actions: ['applySettings', 'resetStreakIfStable', 'markProcessAdopted'] },
      },
      initial: 'up',
      states: {
        up: {
          description: 'The probes pass.',
          on: {
            PROBE_OK: { actions: { type: 'recordProbe', params: ({ event }) => ({ sample: event.sample }) } },
            PROBE_DEGRADED: {
              target: 'degraded',
              actions: [
                { type: 'recordProbe', params: ({ event }) => ({ sample: event.sample }) },
                { type: 'emitDegraded', params: ({ event }) => ({ sample: event.sample }) },
              ],
            },
          },
        },
        degraded: {
          description: 'The last probe said degraded (too few ready connections). The next passing probe goes back to up.',
          on: {
            PROBE_OK: { target: 'up', actions: [{ type: 'recordProbe', params: ({ event }) => ({ sample: event.sample }) }, 'emitHealthyAgain'] },
            PROBE_DEGRADED: { actions: { type: 'recordProbe', params: ({ event }) => ({ sample: event.sample }) } },
          },
        },
      },
    },
    reloading: {
      description: 'cloudflared loads the changed ingress file: a replica takes over, or it restarts. RELOAD requests that arrive meanwhile make one more reload after this one; an operator\'s RESTART replaces the process after it. If the reload fails, the old process keeps serving.',
      entry: 'takePendingReloads',
      invoke: {
        id: 'reload',
        src: 'reloadTunnel',
        input: ({ context }) => ({ process: context.process, requestIds: context.reloadingFor, settings: context.settings }),
        onDone: {
          target: 'running',
          actions: [
            { type: 'recordReloaded', params: ({ event }) => ({ outcome: event.output }) },
            { type: 'emitReloaded', params: ({ event }) => ({ outcome: event.output }) },
            'clearReloading',
          ],
        },
        // The old cloudflared keeps serving (or, if a fallback restart failed, the watcher sees it gone).
        onError: { target: 'running', actions: [{ type: 'emitReloadFailed', params: ({ event }) => ({ error: event.error }) }, 'clearReloading'] },
      },
      on: {
        RELOAD: { actions: { type: 'queueReload', params: ({ event }) => ({ requestId: event.requestId }) } },
        RECHECK: { actions: 'applySettings' },
        // An operator's restart during a reload waits for it, then replaces the process (instead of stopping it).
        RESTART: { actions: 'queueRestart' },
      },
    },
    replacing: {
      description: 'An operator\'s RESTART of a running tunnel: a new cloudflared is started and ready before the old one is stopped, so the tunnel keeps serving (drivers that cannot run two stop, then start). If the new one fails and the old one still runs, the tunnel stays as it was; otherwise it restarts the plain way.',
      invoke: {
        id: 'replace',
        src: 'replaceTunnel',
        input: ({ context }) => ({ process: context.process, settings: context.settings }),
        onDone: {
          target: 'running',
          actions: [
            { type: 'emitRestarted', params: ({ event }) => ({ process: event.output }) },
            { type: 'recordStarted', params: ({ event }) => ({ process: event.output }) },
            'countRestart',
          ],
        },
        onError: [
          {
            guard: { type: 'keptRunning', params: ({ event }) => ({ error: event.error }) },
            target: 'running',
            actions: { type: 'recordReplaceFailed', params: ({ event }) => ({ error: event.error }) },
          },
          { target: 'restarting', actions: { type: 'recordReplaceFailed', params: ({ event }) => ({ error: event.error }) } },
        ],
      },
      on: {
        RECHECK: { actions: 'applySettings' },
        RELOAD: { actions: { type: 'queueReload', params: ({ event }) => ({ requestId: event.requestId }) } },
        // Another operator's restart while one is replacing the process: the replacement under way answers both.
        RESTART: { description: 'answered by the replacement under way' },
      },
    },
    restarting: {
      description: 'Stops cloudflared before starting it again (process exit, failed probes, or RESTART). The first failure since the tunnel was stable and a manual RESTART start again at once; further failures wait in backoff.',
      invoke: {
        id: 'stop',
        src: 'stopTunnel',
        input: ({ context }) => ({ graceMs: context.settings.stopGraceMs, process: context.process }),
        onDone: [
          { guard: 'restartAtOnce', target: 'starting', actions: 'countRestart' },
          { target: 'backoff', actions: 'armBackoff' },
        ],
        onError: [
          { guard: 'restartAtOnce', target: 'starting', actions: 'countRestart' },
          { target: 'backoff', actions: 'armBackoff' },
        ],
      },
      on: {
        RECHECK: { actions: 'applySettings' },
        RELOAD: { actions: { type: 'queueReload', params: ({ event }) => ({ requestId: event.requestId }) } },
      },
    },
    backoff: {
      description: 'Waits before the next start: the n-th consecutive failure waits backoffMs[n-1], and the last value repeats forever. START skips the wait. RELOAD is answered at once: the next start reads the file as it is.',
      after: { backoffDelay: { target: 'starting', actions: 'countRestart' } },
      on: {
        START: { target: 'starting', actions: 'countRestart' },
        RELOAD: { actions: { type: 'answerReloadOnNextStart', params: ({ event }) => ({ requestId: event.requestId }) } },
        // Re-entering re-arms the delay from the persisted deadline (timers are not persisted).
        RECHECK: { target: 'backoff', reenter: true, actions: 'applySettings' },
      },
    },
    stopping: {
      description: 'Stops cloudflared: SIGTERM, then SIGKILL after stopGraceMs. STOP comes from an operator; SHUTDOWN from the manager stopping cloudflared on its own clean exit.',
      invoke: {
        id: 'stopForGood',
        src: 'stopTunnel',
        input: ({ context }) => ({ graceMs: context.settings.stopGraceMs, process: context.process }),
        onDone: { target: 'stopped', actions: 'recordStopped' },
        onError: { target: 'stopped', actions: 'recordStopped' },
      },
      on: {
        STOP: {},
        SHUTDOWN: {},
        RECHECK: { actions: 'applySettings' },
        RELOAD: { actions: { type: 'answerReloadOnNextStart', params: ({ event }) => ({ requestId: event.requestId }) } },
      },
    },
  },
});

export type TunnelMachine = typeof tunnelMachine;
