import { assign, emit, fromPromise, setup } from 'xstate';
import { afterFailure, msUntil, notProvided, now } from './shared.ts';

/**
 * The Cloudflare zones of the account, refreshed on start, on a schedule and on demand.
 * What each state does is in its `description`; the diagram is in docs/machines.md.
 * The next refresh time is kept in context (`nextRefreshAt`) because pending `after` timers are not persisted.
 */

export interface ZonesInput {
  refreshIntervalMs: number;
  retryDelaysMs: number[];
}

export interface RefreshOutput {
  zones: number;
  added: string[];
  removed: string[];
  /** Hostnames adopted into the ledger by this refresh. */
  adopted: string[];
  /** Hostnames a restore put back that this refresh checked (served again, or not): config.yml must follow. */
  checked?: string[];
}

export interface RefreshInput {
  adopt: boolean;
}

export interface ZonesContext extends ZonesInput {
  adoptionDone: boolean;
  attempt: number;
  zones: number;
  lastRefreshAt: number | null;
  nextRefreshAt: number | null;
  lastError: string | null;
}

export type ZonesEvent = { type: 'REFRESH' } | { type: 'RECHECK' };

export type ZonesEmitted =
  | ({ type: 'zones.refreshed'; at: number } & RefreshOutput)
  | { type: 'zones.refresh_failed'; error: string; retryInMs: number; at: number };

export const zonesMachine = setup({
  types: {
    context: {} as ZonesContext,
    input: {} as ZonesInput,
    events: {} as ZonesEvent,
    emitted: {} as ZonesEmitted,
  },
  actors: {
    refreshZones: fromPromise<RefreshOutput, RefreshInput>(async () => notProvided('zones', 'refreshZones')),
  },
  delays: {
    untilNextRefresh: ({ context }) => msUntil(context.nextRefreshAt, now()),
  },
  actions: {
    recordRefresh: assign(({ context }, params: { refreshed: RefreshOutput }) => ({
      adoptionDone: true,
      attempt: 0,
      zones: params.refreshed.zones,
      lastRefreshAt: now(),
      nextRefreshAt: now() + context.refreshIntervalMs,
      lastError: null,
    })),
    emitRefreshed: emit((_, params: { refreshed: RefreshOutput }) => ({ type: 'zones.refreshed' as const, at: now(), ...params.refreshed })),
    recordFailure: assign(({ context }, params: { error: unknown }) => {
      const { attempt, nextAt, lastError } = afterFailure(context.attempt, context.retryDelaysMs, params.error, now());
      return { attempt, nextRefreshAt: nextAt, lastError };
    }),
    emitFailed: emit(({ context }) => ({
      type: 'zones.refresh_failed' as const,
      error: context.lastError ?? 'unknown',
      retryInMs: msUntil(context.nextRefreshAt, now()),
      at: now(),
    })),
  },
}).createMachine({
  id: 'zones',
  context: ({ input }) => ({
    ...input,
    adoptionDone: false,
    attempt: 0,
    zones: 0,
    lastRefreshAt: null,
    nextRefreshAt: null,
    lastError: null,
  }),
  initial: 'refreshing',
  states: {
    refreshing: {
      description: 'Lists the zones of the account. The first successful refresh also adopts the DNS records that already point at the tunnel.',
      invoke: {
        id: 'refresh',
        src: 'refreshZones',
        input: ({ context }) => ({ adopt: !context.adoptionDone }),
        onDone: {
          target: 'ready',
          actions: [
            { type: 'recordRefresh', params: ({ event }) => ({ refreshed: event.output }) },
            { type: 'emitRefreshed', params: ({ event }) => ({ refreshed: event.output }) },
          ],
        },
        onError: { target: 'retrying', actions: [{ type: 'recordFailure', params: ({ event }) => ({ error: event.error }) }, 'emitFailed'] },
      },
    },
    ready: {
      description: 'The zones are cached. The next refresh runs after refreshIntervalMs, or at once on REFRESH or RECHECK (sent after a restore).',
      after: { untilNextRefresh: 'refreshing' },
      on: { REFRESH: 'refreshing', RECHECK: 'refreshing' },
    },
    retrying: {
      description: 'The last refresh failed and the cached zones stay. It retries on retryDelaysMs (the last value repeating), or at once on REFRESH or RECHECK.',
      after: { untilNextRefresh: 'refreshing' },
      on: { REFRESH: 'refreshing', RECHECK: 'refreshing' },
    },
  },
});

export type ZonesMachine = typeof zonesMachine;
