import { assign, emit, fromCallback, fromPromise, setup, type EventObject } from 'xstate';
import { errorText, notProvided, now } from './shared.ts';

/**
 * The Docker topology actor. What each state does is in its `description`; the diagram is in docs/machines.md.
 *
 * Every change is emitted as `topology.changed` with the diff the injected actors computed.
 * Deadlines (`retryAt`, `resyncAt`) live in context because pending `after` timers are not persisted;
 * send RECHECK after restoring a snapshot to re-arm them and re-check the world.
 *
 * Effects are injected with `.provide({ actors: { checkEngine, syncTopology, applyChanges, watchEvents } })`.
 */

export interface TopologyChangeHint {
  kind: 'container' | 'network';
  id: string;
  action: string;
}

/** What a sync or an applied batch produced. `change` is the adapter's diff (src/docker: TopologyChangeSet). */
export interface TopologyUpdate {
  changed: boolean;
  /** One plain-words line per change. */
  summary: readonly string[];
  change?: unknown;
}

export type SyncReason = 'initial' | 'periodic' | 'requested' | 'recheck' | 'recovery';

export interface TopologyMachineInput {
  resyncIntervalMs?: number;
  /** Backoff between attempts while Docker is unavailable; the last value repeats. */
  retryDelaysMs?: number[];
}

export interface TopologyContext {
  resyncIntervalMs: number;
  retryDelaysMs: number[];
  /** Consecutive failures to reach Docker. */
  attempt: number;
  retryAt: number | null;
  resyncAt: number | null;
  lastSyncedAt: number | null;
  lastError: string | null;
  /** Hints waiting for the next re-inspection. */
  pending: TopologyChangeHint[];
  /** Hints being re-inspected now. */
  inFlight: TopologyChangeHint[];
  /** How many non-empty diffs were emitted. */
  version: number;
  /** How many full syncs succeeded. */
  syncs: number;
}

export type TopologyEvent =
  | { type: 'DOCKER.CHANGED'; hint: TopologyChangeHint }
  | { type: 'DOCKER.STREAM_CLOSED'; error: string | null }
  | { type: 'RESYNC' }
  | { type: 'RECHECK' };

export type TopologyEmitted =
  | { type: 'topology.changed'; full: boolean; reason: SyncReason | 'event'; version: number; update: TopologyUpdate }
  | { type: 'topology.synced'; at: number; reason: SyncReason }
  | { type: 'topology.unavailable'; error: string; attempt: number; retryAt: number };

const DEFAULT_RESYNC_MS = 300_000;
const DEFAULT_RETRY_MS = [1_000, 2_000, 5_000, 15_000, 30_000, 60_000];

/** After the sync was recorded: the first one of this actor's life, or one after Docker came back. */
function firstOrRecovery(context: TopologyContext): 'initial' | 'recovery' {
  return context.syncs <= 1 ? 'initial' : 'recovery';
}

export const topologyMachine = setup({
  types: {
    context: {} as TopologyContext,
    events: {} as TopologyEvent,
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- XState takes the input type from this assertion
    input: {} as TopologyMachineInput,
    emitted: {} as TopologyEmitted,
  },
  actors: {
    checkEngine: fromPromise<void>(async () => notProvided('topology', 'checkEngine')),
    syncTopology: fromPromise<TopologyUpdate, { reason: SyncReason }>(async () => notProvided('topology', 'syncTopology')),
    applyChanges: fromPromise<TopologyUpdate, { hints: TopologyChangeHint[] }>(async () => notProvided('topology', 'applyChanges')),
    watchEvents: fromCallback<EventObject>(() => () => undefined),
  },
  guards: {
    hasPending: ({ context }) => context.pending.length > 0,
    resyncOverdue: ({ context }) => context.resyncAt !== null && context.resyncAt <= now(),
    updateChanged: (_, params: { update: TopologyUpdate }) => params.update.changed,
  },
  delays: {
    retryDelay: ({ context }) => Math.max(0, (context.retryAt ?? now()) - now()),
    resyncDelay: ({ context }) => Math.max(0, (context.resyncAt ?? now() + context.resyncIntervalMs) - now()),
  },
  actions: {
    recordFailure: assign(({ context }, params: { error: string }) => {
      const attempt = context.attempt + 1;
      const delays = context.retryDelaysMs;
      const delay = delays[Math.min(attempt, delays.length) - 1] ?? DEFAULT_RETRY_MS[0]!;
      return { attempt, lastError: params.error, retryAt: now() + delay, pending: [], inFlight: [] };
    }),
    emitUnavailable: emit(({ context }) => ({
      type: 'topology.unavailable' as const,
      error: context.lastError ?? 'unknown',
      attempt: context.attempt,
      retryAt: context.retryAt ?? now(),
    })),
    recordSync: assign(({ context }) => {
      const at = now();
      return { attempt: 0, retryAt: null, lastError: null, lastSyncedAt: at, resyncAt: at + context.resyncIntervalMs, syncs: context.syncs + 1 };
    }),
    emitSynced: emit(({ context }, params: { reason: SyncReason }) => ({
      type: 'topology.synced' as const,
      at: context.lastSyncedAt ?? now(),
      reason: params.reason,
    })),
    countVersion: assign({ version: ({ context }) => context.version + 1 }),
    emitChanged: emit(({ context }, params: { update: TopologyUpdate; full: boolean; reason: SyncReason | 'event' }) => ({
      type: 'topology.changed' as const,
      full: params.full,
      reason: params.reason,
      version: context.version,
      update: params.update,
    })),
    queueHint: assign({
      pending: ({ context, event }) => {
        if (event.type !== 'DOCKER.CHANGED') return context.pending;
        const { hint } = event;
        const known = context.pending.some((p) => p.kind === hint.kind && p.id === hint.id);
        return known ? context.pending : [...context.pending, hint];
      },
    }),
    takePending: assign(({ context }) => ({ inFlight: context.pending, pending: [] })),
    clearInFlight: assign({ inFlight: [] }),
  },
}).createMachine({
  id: 'topology',
  context: ({ input }) => ({
    resyncIntervalMs: input.resyncIntervalMs ?? DEFAULT_RESYNC_MS,
    retryDelaysMs: input.retryDelaysMs !== undefined && input.retryDelaysMs.length > 0 ? input.retryDelaysMs : DEFAULT_RETRY_MS,
    attempt: 0,
    retryAt: null,
    resyncAt: null,
    lastSyncedAt: null,
    lastError: null,
    pending: [],
    inFlight: [],
    version: 0,
    syncs: 0,
  }),
  initial: 'connecting',
  states: {
    connecting: {
      description: 'Checks that the Docker engine answers.',
      invoke: {
        src: 'checkEngine',
        onDone: { target: 'syncing' },
        onError: {
          target: 'unavailable',
          actions: [{ type: 'recordFailure', params: ({ event }) => ({ error: errorText(event.error) }) }, 'emitUnavailable'],
        },
      },
    },
    syncing: {
      description: 'A full read of networks and containers. It runs after every reconnect too, since events missed while away are gone.',
      invoke: {
        src: 'syncTopology',
        input: ({ context }) => ({ reason: context.syncs === 0 ? ('initial' as const) : ('recovery' as const) }),
        onDone: [
          {
            guard: { type: 'updateChanged', params: ({ event }) => ({ update: event.output }) },
            target: 'live',
            actions: [
              'recordSync',
              'countVersion',
              { type: 'emitChanged', params: ({ event, context }) => ({ update: event.output, full: true, reason: firstOrRecovery(context) }) },
              { type: 'emitSynced', params: ({ context }) => ({ reason: firstOrRecovery(context) }) },
            ],
          },
          { target: 'live', actions: ['recordSync', { type: 'emitSynced', params: ({ context }) => ({ reason: firstOrRecovery(context) }) }] },
        ],
        onError: {
          target: 'unavailable',
          actions: [{ type: 'recordFailure', params: ({ event }) => ({ error: errorText(event.error) }) }, 'emitUnavailable'],
        },
      },
    },
    unavailable: {
      description: 'Docker does not answer: retries with backoff (retryDelaysMs, the last value repeating). Targets for host services keep working meanwhile. RESYNC retries at once.',
      tags: ['unavailable'],
      after: { retryDelay: { target: 'connecting' } },
      on: {
        RESYNC: { target: 'connecting' },
        RECHECK: { target: 'unavailable', reenter: true },
      },
    },
    live: {
      description: 'The Docker events stream runs. Each event queues a hint to re-inspect what it names. If the stream closes, the actor reconnects.',
      tags: ['available'],
      invoke: { id: 'events', src: 'watchEvents' },
      on: {
        'DOCKER.CHANGED': { actions: 'queueHint' },
        'DOCKER.STREAM_CLOSED': {
          target: 'connecting',
          actions: assign({ lastError: ({ event }) => event.error ?? 'the Docker events stream ended' }),
        },
      },
      initial: 'synced',
      states: {
        synced: {
          description: 'Up to date. Queued hints start a re-inspection. A full resync runs every resyncIntervalMs, and on RESYNC or RECHECK.',
          always: { guard: 'hasPending', target: 'applying' },
          after: { resyncDelay: { target: 'resyncing' } },
          on: {
            RESYNC: { target: 'resyncing' },
            RECHECK: { target: 'resyncing' },
          },
        },
        applying: {
          description: 'Re-inspects what the queued hints name. Hints that arrive meanwhile are handled together in the next round. If this fails, a full resync follows.',
          entry: 'takePending',
          invoke: {
            src: 'applyChanges',
            input: ({ context }) => ({ hints: context.inFlight }),
            onDone: [
              {
                guard: { type: 'updateChanged', params: ({ event }) => ({ update: event.output }) },
                target: 'synced',
                actions: [
                  'clearInFlight',
                  'countVersion',
                  { type: 'emitChanged', params: ({ event }) => ({ update: event.output, full: false, reason: 'event' as const }) },
                ],
              },
              { target: 'synced', actions: 'clearInFlight' },
            ],
            onError: { target: 'resyncing', actions: 'clearInFlight' },
          },
        },
        resyncing: {
          description: 'A full read of networks and containers while live. If it fails, Docker is unavailable.',
          invoke: {
            src: 'syncTopology',
            input: () => ({ reason: 'periodic' as const }),
            onDone: [
              {
                guard: { type: 'updateChanged', params: ({ event }) => ({ update: event.output }) },
                target: 'synced',
                actions: [
                  'recordSync',
                  'countVersion',
                  { type: 'emitChanged', params: ({ event }) => ({ update: event.output, full: true, reason: 'periodic' as const }) },
                ],
              },
              { target: 'synced', actions: 'recordSync' },
            ],
            onError: {
              target: '#topology.unavailable',
              actions: [{ type: 'recordFailure', params: ({ event }) => ({ error: errorText(event.error) }) }, 'emitUnavailable'],
            },
          },
        },
      },
    },
  },
});
