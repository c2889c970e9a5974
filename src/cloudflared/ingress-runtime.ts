/**
 * Running the ingress machine with real effects: the actors to `.provide()`, and two helpers that send a
 * request to a running ingress actor and wait for its outcome (for route sagas and `config rollback`).
 */
import { createActor, fromPromise, type ActorRefFrom } from 'xstate';
import { ask } from '../actor-ask.ts';
import { TunnelManagerError, type ErrorCode } from '../errors.ts';
import {
  ingressMachine,
  type IngressChange,
  type IngressEmitted,
  type IngressEvent,
  type ReloadInput,
  type ReloadOutput,
  type RenderInput,
  type RenderOutput,
  type RestoreInput,
  type RestoreOutput,
  type RollbackInput,
  type WriteInput,
  type WriteOutput,
} from '../../machines/ingress.machine.ts';
import type { LedgerRule } from './ingress-render.ts';
import { commitLabelFor, type IngressService, type PreparedConfig } from './ingress-service.ts';

export interface IngressRuntimeDeps {
  service: IngressService;
  /** The routes to publish, read from the ledger at the start of each cycle. */
  readLedger: () => readonly LedgerRule[] | Promise<readonly LedgerRule[]>;
  /** Hostnames whose hand-written rules go too (adopted routes being deleted); none when absent. */
  readRetired?: () => readonly string[];
  /** Restarts cloudflared on the file as it is now (a replica restart); rejects when cloudflared refuses it. */
  reload: (input: ReloadInput) => Promise<void>;
}

/** The ingress machine's actors, for `ingressMachine.provide({ actors: ingressActors(deps) })`. */
export function ingressActors(deps: IngressRuntimeDeps) {
  const { service } = deps;
  return {
    render: fromPromise<RenderOutput, RenderInput>(async () => service.render(await deps.readLedger(), deps.readRetired?.() ?? [])),
    write: fromPromise<WriteOutput, WriteInput>(async ({ input }) =>
      service.write(input.rendered as PreparedConfig, commitLabelFor(input.changes), { commitDuringReload: true }),
    ),
    // The new version's git commit runs while cloudflared loads it: the reload is done when both are, and a commit
    // that failed (GIT_FAILED) fails it, so the version git could not record is undone like a refused one.
    reload: fromPromise<ReloadOutput, ReloadInput>(async ({ input }) => {
      await deps.reload(input);
      return { commit: await service.takeCommit() };
    }),
    markGood: fromPromise<void, { commit: string | null }>(async () => service.markGood()),
    restoreLastGood: fromPromise<RestoreOutput, RestoreInput>(async ({ input }) => {
      // A reload that failed before the commit made during it was collected: that commit is the refused version.
      const failedCommit = input.failedCommit ?? (await service.takeCommit().catch(() => null));
      const what = failedCommit ? `version ${failedCommit.slice(0, 12)}` : 'the new version';
      const why = input.reloadError ? `: ${input.reloadError.message}` : '';
      const failed = input.reloadError?.code === 'GIT_FAILED' ? `git could not record ${what}` : `reload of ${what} failed`;
      const restored = await service.restoreLastGood(`${failed}${why}`);
      // cloudflared refused the new file and its previous process kept serving: if that process already runs the
      // restored version, reloading it again would only start a needless replica.
      const needsReload = !(input.reloadError?.keptRunning === true && service.isRunning(restored.content));
      return { commit: restored.commit, needsReload, failedCommit };
    }),
    // The hand-written part goes back to `commit`; the managed rules stay what the ledger says (never a lying ledger).
    rollback: fromPromise<WriteOutput, RollbackInput>(async ({ input }) => service.rollbackTo(input.commit, await deps.readLedger(), deps.readRetired?.() ?? [])),
  };
}

/** The ingress machine with real effects, ready for `createActor` (or to be spawned by the supervisor). */
export function provideIngressMachine(deps: IngressRuntimeDeps) {
  return ingressMachine.provide({ actors: ingressActors(deps) });
}

/** A running ingress actor: one started alone, or the supervisor's child. */
export type IngressActor = ActorRefFrom<typeof ingressMachine>;

/** Starts an ingress actor with real effects (and, with `watch`, the file watcher feeding it hand edits). */
export function startIngressActor(deps: IngressRuntimeDeps, options: { watch?: boolean } = {}): { actor: IngressActor; stop: () => void } {
  const actor = createActor(provideIngressMachine(deps));
  actor.start();
  const stopWatching = options.watch
    ? deps.service.watch(() => actor.send({ type: 'CHANGE', change: { hostname: '*', action: 'file-edited', project: '*' } }))
    : () => undefined;
  return {
    actor,
    stop: () => {
      stopWatching();
      actor.stop();
    },
  };
}

type Outcome = Extract<IngressEmitted, { type: 'ingress.applied' | 'ingress.failed' | 'ingress.restored' | 'ingress.restore_failed' }>;

const OUTCOME_TYPES: ReadonlySet<string> = new Set(['ingress.applied', 'ingress.failed', 'ingress.restored', 'ingress.restore_failed']);

function isOutcome(event: IngressEmitted): event is Outcome {
  return OUTCOME_TYPES.has(event.type);
}

/** Sends `event` and resolves with the first cycle outcome that `belongs` to it (the machine answers every cycle itself). */
function askIngress(actor: IngressActor, event: IngressEvent, belongs: (event: Outcome) => boolean): Promise<Outcome> {
  return ask(actor, event, { emitted: (emitted) => (isOutcome(emitted) && belongs(emitted) ? { value: emitted } : undefined) }, null);
}

/** Sends a change and resolves with the outcome of the cycle that applied it (`change.requestId` is required). */
export function requestIngressChange(actor: IngressActor, change: IngressChange & { requestId: string }): Promise<Outcome> {
  return askIngress(actor, { type: 'CHANGE', change }, (event) => event.changes.some((candidate) => candidate.requestId === change.requestId));
}

/**
 * `tunnel-manager config rollback <commit>` against a running ingress actor: validate → write → reload,
 * like any version. Resolves with the commit written; throws the failure as a TunnelManagerError.
 */
export async function rollbackIngress(actor: IngressActor, commit: string): Promise<{ commit: string | null; reloaded: boolean }> {
  const event = await askIngress(
    actor,
    { type: 'ROLLBACK', commit },
    (candidate) => ('rollbackOf' in candidate && candidate.rollbackOf === commit) || candidate.type === 'ingress.restored' || candidate.type === 'ingress.restore_failed',
  );
  if (event.type === 'ingress.applied') return { commit: event.commit, reloaded: event.reloaded };
  if (event.type === 'ingress.failed') throw new TunnelManagerError({ code: event.error.code as ErrorCode, message: event.error.message, fix: event.error.fix, details: { commit } });
  const reason = event.reloadError?.message ?? 'unknown reason';
  throw new TunnelManagerError({
    code: 'RELOAD_FAILED',
    message: `cloudflared refused version ${commit} (${reason}); the last good version was restored.`,
    fix: 'Pick another version from `tunnel-manager config history`, and check the cloudflared log for why this one was refused.',
    details: { commit, restoredCommit: event.type === 'ingress.restored' ? event.restoredCommit : null },
  });
}
