import { assign, emit, fromPromise, setup } from 'xstate';
import { afterFailure, errorCode, msUntil, notProvided, now } from './shared.ts';
import type { ErrorCode } from './error-codes.ts';

/**
 * The orphan scan (src/app/effects/orphan-effects.ts), run on start, after a restore, on a schedule and on demand.
 * What each state does is in its `description`; the diagram is in docs/machines.md.
 * The schedule is kept in context (`nextScanAt`), so it survives restarts with the supervisor's snapshot.
 */

export interface OrphansInput {
  intervalMs: number;
  retryDelaysMs: number[];
}

/** What a scan tells the machine; the provided effect may return more (it is emitted as it is). */
export interface OrphanScanOutput {
  routes: number;
  orphans: unknown[];
  newlyOrphaned: string[];
  resolved: string[];
}

export interface OrphansContext extends OrphansInput {
  attempt: number;
  /** Orphans found by the last successful scan. */
  orphans: number;
  lastScanAt: number | null;
  nextScanAt: number | null;
  lastError: string | null;
  /** The stable code of the last failure (CLOUDFLARE_UNAVAILABLE, CLOUDFLARE_AUTH_FAILED, …). */
  lastErrorCode: ErrorCode | null;
}

export type OrphansEvent = { type: 'SCAN' } | { type: 'RECHECK'; settings?: OrphansInput };

export type OrphansEmitted =
  | { type: 'orphans.scanned'; result: OrphanScanOutput; at: number }
  | { type: 'orphans.scan_failed'; code: ErrorCode; error: string; retryInMs: number; at: number };

export const orphansMachine = setup({
  types: {
    context: {} as OrphansContext,
    input: {} as OrphansInput,
    events: {} as OrphansEvent,
    emitted: {} as OrphansEmitted,
  },
  actors: {
    scanOrphans: fromPromise<OrphanScanOutput, void>(async () => notProvided('orphans', 'scanOrphans')),
  },
  delays: {
    untilNextScan: ({ context }) => msUntil(context.nextScanAt, now()),
  },
  actions: {
    applySettings: assign(({ event }) => (event.type === 'RECHECK' && event.settings ? { ...event.settings } : {})),
    recordScan: assign(({ context }, params: { result: OrphanScanOutput }) => ({
      attempt: 0,
      orphans: params.result.orphans.length,
      lastScanAt: now(),
      nextScanAt: now() + context.intervalMs,
      lastError: null,
      lastErrorCode: null,
    })),
    emitScanned: emit((_, params: { result: OrphanScanOutput }) => ({ type: 'orphans.scanned' as const, result: params.result, at: now() })),
    recordFailure: assign(({ context }, params: { error: unknown }) => {
      const { attempt, nextAt, lastError } = afterFailure(context.attempt, context.retryDelaysMs, params.error, now());
      return { attempt, nextScanAt: nextAt, lastError, lastErrorCode: errorCode(params.error) };
    }),
    emitFailed: emit(({ context }) => ({
      type: 'orphans.scan_failed' as const,
      code: context.lastErrorCode ?? 'INTERNAL',
      error: context.lastError ?? 'unknown',
      retryInMs: msUntil(context.nextScanAt, now()),
      at: now(),
    })),
  },
}).createMachine({
  id: 'orphans',
  context: ({ input }) => ({ ...input, attempt: 0, orphans: 0, lastScanAt: null, nextScanAt: null, lastError: null, lastErrorCode: null }),
  initial: 'scanning',
  states: {
    scanning: {
      description: 'Scans the routes for orphans (src/app/effects/orphan-effects.ts). A RECHECK that arrives now only takes its new settings.',
      invoke: {
        id: 'scan',
        src: 'scanOrphans',
        onDone: {
          target: 'waiting',
          actions: [
            { type: 'recordScan', params: ({ event }) => ({ result: event.output }) },
            { type: 'emitScanned', params: ({ event }) => ({ result: event.output }) },
          ],
        },
        onError: { target: 'retrying', actions: [{ type: 'recordFailure', params: ({ event }) => ({ error: event.error }) }, 'emitFailed'] },
      },
      on: { RECHECK: { actions: 'applySettings' } },
    },
    waiting: {
      description: 'Waits for the next scan: every intervalMs (a week by default), or at once on SCAN or RECHECK (sent after a restore).',
      after: { untilNextScan: 'scanning' },
      on: { SCAN: 'scanning', RECHECK: { target: 'scanning', actions: 'applySettings' } },
    },
    retrying: {
      description: 'The last scan failed (a zone could not be listed). It retries on retryDelaysMs (the last value repeating), or at once on SCAN or RECHECK.',
      after: { untilNextScan: 'scanning' },
      on: { SCAN: 'scanning', RECHECK: { target: 'scanning', actions: 'applySettings' } },
    },
  },
});

export type OrphansMachine = typeof orphansMachine;
