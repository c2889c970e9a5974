import { assign, emit, fromPromise, setup } from 'xstate';
import type { ErrorCode } from './error-codes.ts';
import { errorCode, keptRunning, notProvided } from './shared.ts';

/**
 * The only writer of cloudflared's config.yml. What each state does is in its `description`; the diagram is in
 * docs/machines.md. CHANGE and ROLLBACK events that arrive during a cycle wait in `pending` / `pendingRollback`.
 *
 * Effects are injected with `.provide()`: `render` (reads the ledger, checks drift, renders and validates),
 * `write` (atomic write + git commit), `reload` (restart cloudflared on the new file; when the write left its git
 * commit running, the reload also waits for it and answers its id, and a failed commit fails it), `markGood` (remember
 * the version cloudflared accepted), `restoreLastGood` (write back that version), `rollback` (write an
 * earlier version). The route ledger is read by the provided `render`, never imported here.
 */

/** One reason to render again. */
export interface IngressChange {
  hostname: string;
  action: 'add' | 'update' | 'remove' | 'file-edited' | 'resync' | (string & {});
  project: string;
  /** The ingress target, when there is one. */
  target?: string | null;
  /** Lets a caller find the outcome of its own change among the emitted events. */
  requestId?: string;
}

/** A failure in plain data (errors are not serializable; this is what lands in context and events). */
export interface IngressFailure {
  code: ErrorCode;
  message: string;
  fix: string;
  /** A refused reload left the previous cloudflared running on the previous file (a replica that never took over). */
  keptRunning?: boolean;
}

export interface RenderInput { changes: IngressChange[] }
/**
 * The rendered file, ready to write, and the file on disk it was rendered from (`write` refuses when that changed
 * since). Extra fields pass through to `write` untouched.
 */
export interface RenderOutput { content: string; basedOn: string | null; [key: string]: unknown }
export interface WriteInput { rendered: RenderOutput; changes: IngressChange[] }
export interface WriteOutput {
  /** Whether the file's bytes changed. */
  changed: boolean;
  /** The git commit of this version, if one was made. */
  commit: string | null;
  /** Whether cloudflared must restart to see this version (false for identical or comment-only changes). */
  needsReload: boolean;
}
export interface ReloadInput { commit: string | null; reason: 'apply' | 'restore' }
/** The commit the version got while cloudflared loaded it (null or absent when `write` already made it, or none). */
export type ReloadOutput = { commit?: string | null } | void;
export interface RestoreInput { failedCommit: string | null; reloadError: IngressFailure | null }
export interface RestoreOutput {
  commit: string | null;
  /** The refused version's commit, when it was made during the reload (the machine did not know it yet). */
  failedCommit?: string | null;
  /** False when cloudflared still runs the restored version (it refused the new one and kept the old): no reload. */
  needsReload?: boolean;
}
export interface RollbackInput { commit: string }

export interface IngressContext {
  /** Changes that arrived after the current cycle began; they make the next cycle. */
  pending: IngressChange[];
  /** The changes the current cycle is applying. */
  inFlight: IngressChange[];
  rendered: RenderOutput | null;
  written: WriteOutput | null;
  /** A rollback asked for while busy: runs after the current cycle. */
  pendingRollback: string | null;
  /** The rollback the current cycle is applying. */
  rollbackCommit: string | null;
  reloadError: IngressFailure | null;
  /** The version whose reload failed in this cycle. */
  failedCommit: string | null;
  lastCommit: string | null;
  lastError: IngressFailure | null;
  /** How many times cloudflared was reloaded (handy for the status tool). */
  reloads: number;
  cycles: number;
}

export type IngressEvent =
  | { type: 'CHANGE'; change: IngressChange }
  | { type: 'ROLLBACK'; commit: string };

/** What the machine tells the world, with `actor.on(type, …)`. */
export type IngressEmitted =
  | { type: 'ingress.applied'; changes: IngressChange[]; commit: string | null; changed: boolean; reloaded: boolean; rollbackOf: string | null }
  | { type: 'ingress.failed'; stage: 'render' | 'write' | 'rollback'; changes: IngressChange[]; error: IngressFailure; rollbackOf: string | null }
  | { type: 'ingress.restored'; changes: IngressChange[]; failedCommit: string | null; restoredCommit: string | null; reloadError: IngressFailure | null }
  | { type: 'ingress.restore_failed'; changes: IngressChange[]; failedCommit: string | null; reloadError: IngressFailure | null; error: IngressFailure };

/** Reads code/message/fix off whatever was thrown, without knowing its class. */
export function describeFailure(error: unknown): IngressFailure {
  if (error !== null && typeof error === 'object') {
    const shape = error as { code?: unknown; message?: unknown; fix?: unknown };
    return {
      code: errorCode(error),
      message: typeof shape.message === 'string' ? shape.message : String(error),
      fix: typeof shape.fix === 'string' ? shape.fix : 'See the service log around this time.',
      ...(keptRunning(error) ? { keptRunning: true } : {}),
    };
  }
  return { code: 'INTERNAL', message: String(error), fix: 'See the service log around this time.' };
}

const initialContext: IngressContext = {
  pending: [],
  inFlight: [],
  rendered: null,
  written: null,
  pendingRollback: null,
  rollbackCommit: null,
  reloadError: null,
  failedCommit: null,
  lastCommit: null,
  lastError: null,
  reloads: 0,
  cycles: 0,
};

/** What every cycle (change or rollback) starts from: nothing rendered, written or refused yet. */
const freshCycle = {
  rendered: () => null,
  written: () => null,
  reloadError: () => null,
  cycles: ({ context }: { context: IngressContext }) => context.cycles + 1,
};

export const ingressMachine = setup({
  types: {
    context: {} as IngressContext,
    events: {} as IngressEvent,
    emitted: {} as IngressEmitted,
  },
  actors: {
    render: fromPromise<RenderOutput, RenderInput>(async () => notProvided('ingress', 'render')),
    write: fromPromise<WriteOutput, WriteInput>(async () => notProvided('ingress', 'write')),
    reload: fromPromise<ReloadOutput, ReloadInput>(async () => notProvided('ingress', 'reload')),
    markGood: fromPromise<void, { commit: string | null }>(async () => notProvided('ingress', 'markGood')),
    restoreLastGood: fromPromise<RestoreOutput, RestoreInput>(async () => notProvided('ingress', 'restoreLastGood')),
    rollback: fromPromise<WriteOutput, RollbackInput>(async () => notProvided('ingress', 'rollback')),
  },
  guards: {
    hasPendingRollback: ({ context }) => context.pendingRollback !== null,
    hasPendingChanges: ({ context }) => context.pending.length > 0,
    needsReload: (_, params: { written: WriteOutput }) => params.written.needsReload,
    restoredNeedsReload: (_, params: { restored: RestoreOutput }) => params.restored.needsReload !== false,
  },
  actions: {
    queueChange: assign({
      pending: ({ context, event }) => (event.type === 'CHANGE' ? [...context.pending, event.change] : context.pending),
    }),
    queueRollback: assign({
      pendingRollback: ({ context, event }) => (event.type === 'ROLLBACK' ? event.commit : context.pendingRollback),
    }),
    startCycleFromEvent: assign({
      ...freshCycle,
      inFlight: ({ event }) => (event.type === 'CHANGE' ? [event.change] : []),
      pending: () => [],
      failedCommit: () => null,
      rollbackCommit: () => null,
    }),
    startCycleFromPending: assign({
      ...freshCycle,
      inFlight: ({ context }) => context.pending,
      pending: () => [],
      failedCommit: () => null,
      rollbackCommit: () => null,
    }),
    startRollbackFromEvent: assign({
      ...freshCycle,
      rollbackCommit: ({ event }) => (event.type === 'ROLLBACK' ? event.commit : null),
      inFlight: () => [],
    }),
    startRollbackFromPending: assign({
      ...freshCycle,
      rollbackCommit: ({ context }) => context.pendingRollback,
      pendingRollback: () => null,
      inFlight: () => [],
    }),
    storeRendered: assign((_, params: { rendered: RenderOutput }) => ({ rendered: params.rendered })),
    storeWritten: assign(({ context }, params: { written: WriteOutput }) => ({
      written: params.written,
      lastCommit: params.written.commit ?? context.lastCommit,
    })),
    countReload: assign({ reloads: ({ context }) => context.reloads + 1 }),
    storeReloadCommit: assign(({ context }, params: { commit: string | null }) =>
      params.commit === null || context.written === null ? {} : { written: { ...context.written, commit: params.commit }, lastCommit: params.commit },
    ),
    storeReloadError: assign(({ context }, params: { error: unknown }) => ({
      reloadError: describeFailure(params.error),
      failedCommit: context.written?.commit ?? null,
    })),
    reloadErrorIsLastError: assign({ lastError: ({ context }) => context.reloadError }),
    storeError: assign((_, params: { error: unknown }) => ({ lastError: describeFailure(params.error) })),
    clearError: assign({ lastError: () => null }),
    storeRestored: assign(({ context }, params: { restored: RestoreOutput }) => ({
      failedCommit: params.restored.failedCommit ?? context.failedCommit,
      lastCommit: params.restored.commit ?? context.lastCommit,
      written: { changed: true, commit: params.restored.commit ?? context.lastCommit, needsReload: true },
    })),
    emitApplied: emit(({ context }) => ({
      type: 'ingress.applied' as const,
      changes: context.inFlight,
      commit: context.written?.commit ?? null,
      changed: context.written?.changed ?? false,
      reloaded: context.written?.needsReload ?? false,
      rollbackOf: context.rollbackCommit,
    })),
    /** A stage of the cycle failed; a rollback's failure names the commit it was restoring. */
    emitFailed: emit(({ context }, params: { stage: 'render' | 'write' | 'rollback'; error: unknown }) => ({
      type: 'ingress.failed' as const,
      stage: params.stage,
      changes: context.inFlight,
      error: describeFailure(params.error),
      rollbackOf: params.stage === 'rollback' ? context.rollbackCommit : null,
    })),
    emitRestored: emit(({ context }) => ({
      type: 'ingress.restored' as const,
      changes: context.inFlight,
      failedCommit: context.failedCommit,
      restoredCommit: context.written?.commit ?? null,
      reloadError: context.reloadError,
    })),
    emitRestoreFailed: emit(({ context }, params: { error: unknown }) => ({
      type: 'ingress.restore_failed' as const,
      changes: context.inFlight,
      failedCommit: context.failedCommit,
      reloadError: context.reloadError,
      error: describeFailure(params.error),
    })),
    finishCycle: assign({ inFlight: () => [], rendered: () => null, rollbackCommit: () => null, failedCommit: () => null }),
  },
}).createMachine({
  id: 'ingress',
  initial: 'idle',
  context: initialContext,
  on: {
    CHANGE: { actions: 'queueChange' },
    ROLLBACK: { actions: 'queueRollback' },
  },
  states: {
    idle: {
      description: 'No cycle in flight. CHANGE starts a cycle; ROLLBACK starts a rollback.',
      on: {
        CHANGE: { target: 'rendering', actions: 'startCycleFromEvent' },
        ROLLBACK: { target: 'rollingBack', actions: 'startRollbackFromEvent' },
      },
    },
    rendering: {
      description: 'Renders config.yml from the ledger and validates it.',
      invoke: {
        src: 'render',
        input: ({ context }) => ({ changes: context.inFlight }),
        onDone: { target: 'writing', actions: { type: 'storeRendered', params: ({ event }) => ({ rendered: event.output }) } },
        onError: {
          target: 'settling',
          actions: [
            { type: 'storeError', params: ({ event }) => ({ error: event.error }) },
            { type: 'emitFailed', params: ({ event }) => ({ stage: 'render' as const, error: event.error }) },
          ],
        },
      },
    },
    writing: {
      description: 'Writes the file atomically and commits it to git (when a reload follows, the commit runs during it). If nothing cloudflared would notice changed, the cycle ends without a reload.',
      invoke: {
        src: 'write',
        input: ({ context }) => ({ rendered: context.rendered as RenderOutput, changes: context.inFlight }),
        onDone: [
          {
            guard: { type: 'needsReload', params: ({ event }) => ({ written: event.output }) },
            target: 'reloading',
            actions: { type: 'storeWritten', params: ({ event }) => ({ written: event.output }) },
          },
          { target: 'settling', actions: [{ type: 'storeWritten', params: ({ event }) => ({ written: event.output }) }, 'clearError', 'emitApplied'] },
        ],
        onError: {
          target: 'settling',
          actions: [
            { type: 'storeError', params: ({ event }) => ({ error: event.error }) },
            { type: 'emitFailed', params: ({ event }) => ({ stage: 'write' as const, error: event.error }) },
          ],
        },
      },
    },
    rollingBack: {
      description: 'ROLLBACK: writes an earlier version, then takes the same reload path as a change.',
      invoke: {
        src: 'rollback',
        input: ({ context }) => ({ commit: context.rollbackCommit as string }),
        onDone: [
          {
            guard: { type: 'needsReload', params: ({ event }) => ({ written: event.output }) },
            target: 'reloading',
            actions: { type: 'storeWritten', params: ({ event }) => ({ written: event.output }) },
          },
          { target: 'settling', actions: [{ type: 'storeWritten', params: ({ event }) => ({ written: event.output }) }, 'clearError', 'emitApplied'] },
        ],
        onError: {
          target: 'settling',
          actions: [
            { type: 'storeError', params: ({ event }) => ({ error: event.error }) },
            { type: 'emitFailed', params: ({ event }) => ({ stage: 'rollback' as const, error: event.error }) },
          ],
        },
      },
    },
    reloading: {
      description: 'Makes cloudflared load the new file while git records it. If the reload or the commit fails, the last good version is restored.',
      entry: 'countReload',
      invoke: {
        src: 'reload',
        input: ({ context }) => ({ commit: context.written?.commit ?? null, reason: 'apply' as const }),
        onDone: { target: 'confirming', actions: { type: 'storeReloadCommit', params: ({ event }) => ({ commit: event.output?.commit ?? null }) } },
        onError: { target: 'restoring', actions: { type: 'storeReloadError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    confirming: {
      description: 'Remembers the version cloudflared accepted as the last good one.',
      invoke: {
        src: 'markGood',
        input: ({ context }) => ({ commit: context.written?.commit ?? null }),
        onDone: { target: 'settling', actions: ['clearError', 'emitApplied'] },
        onError: { target: 'settling', actions: ['clearError', 'emitApplied'] },
      },
    },
    restoring: {
      description: 'The reload failed: writes back the last good version. No second reload when the refused version never replaced the running one.',
      invoke: {
        src: 'restoreLastGood',
        input: ({ context }) => ({ failedCommit: context.written?.commit ?? null, reloadError: context.reloadError }),
        onDone: [
          {
            guard: { type: 'restoredNeedsReload', params: ({ event }) => ({ restored: event.output }) },
            target: 'reloadingRestored',
            actions: { type: 'storeRestored', params: ({ event }) => ({ restored: event.output }) },
          },
          { target: 'confirmingRestored', actions: { type: 'storeRestored', params: ({ event }) => ({ restored: event.output }) } },
        ],
        onError: {
          target: 'settling',
          actions: [
            { type: 'storeError', params: ({ event }) => ({ error: event.error }) },
            { type: 'emitRestoreFailed', params: ({ event }) => ({ error: event.error }) },
          ],
        },
      },
    },
    reloadingRestored: {
      description: 'Makes cloudflared load the restored version.',
      entry: 'countReload',
      invoke: {
        src: 'reload',
        input: ({ context }) => ({ commit: context.written?.commit ?? null, reason: 'restore' as const }),
        onDone: { target: 'confirmingRestored' },
        onError: {
          target: 'settling',
          actions: [
            { type: 'storeError', params: ({ event }) => ({ error: event.error }) },
            { type: 'emitRestoreFailed', params: ({ event }) => ({ error: event.error }) },
          ],
        },
      },
    },
    confirmingRestored: {
      description: 'Remembers the restored version as good again and reports the restore.',
      invoke: {
        src: 'markGood',
        input: ({ context }) => ({ commit: context.written?.commit ?? null }),
        onDone: { target: 'settling', actions: ['reloadErrorIsLastError', 'emitRestored'] },
        onError: { target: 'settling', actions: ['reloadErrorIsLastError', 'emitRestored'] },
      },
    },
    settling: {
      description: 'Ends the cycle. CHANGE events that arrived during the cycle were collected and now make one next cycle, so N changes during a reload cost at most one more reload. A ROLLBACK that arrived runs first.',
      entry: 'finishCycle',
      always: [
        { guard: 'hasPendingRollback', target: 'rollingBack', actions: 'startRollbackFromPending' },
        { guard: 'hasPendingChanges', target: 'rendering', actions: 'startCycleFromPending' },
        { target: 'idle' },
      ],
    },
  },
});
