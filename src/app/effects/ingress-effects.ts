/**
 * The ingress actor's effects, all provided from here: config.yml, of which the ingress machine is the only writer.
 * A cycle reads the route ledger (the store), checks the file on disk for hand edits (the drift check), generates the
 * next version (the generator: pure, validated), saves and commits it (the loader), and asks the tunnel actor for the
 * reload. Each of those is called from here and calls nothing back: src/cloudflared's parts return what they found
 * (reports, adopted edits, commits) and this module takes it to the ledger, the events table and the audit log.
 *
 * Also here: the two helpers that send a request to a running ingress actor and wait for its outcome (route sagas,
 * `config rollback`).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createActor, fromPromise, type ActorRefFrom } from 'xstate';
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
} from '../../../machines/ingress.machine.ts';
import { DriftCheck, type AdoptedEdit, type IngressReport } from '../../cloudflared/ingress/ingress-drift-check.ts';
import { ConfigFileWatcher } from '../../cloudflared/ingress/ingress-drift.ts';
import { baseDocument, commitLabelFor, generateConfig, type GeneratedConfig, type NewFileSettings } from '../../cloudflared/ingress/ingress-generator.ts';
import { IngressLoader, type WriteOutcome } from '../../cloudflared/ingress/ingress-loader.ts';
import type { LedgerRule } from '../../cloudflared/ingress/ingress-render.ts';
import { TunnelManagerError } from '../../errors.ts';
import type { AuditRepository } from '../../store/audit-repository.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import type { Config } from '../config/config.ts';
import type { EventBus } from '../actors/event-bus.ts';
import { ask } from '../../actor-ask.ts';
import type { ChildOf, SupervisorChild } from '../actors/supervisor-children.ts';

export type { AdoptedEdit };

/** Where drift and restore reports go: the events table (and bus) and the audit log. */
export interface IngressReporter {
  event(event: IngressReport['event']): void;
  audit(entry: NonNullable<IngressReport['audit']>): void;
}

/** What the ingress machine's effects work with. */
export interface IngressEffectsDeps {
  loader: IngressLoader;
  drift: DriftCheck;
  /** What a brand-new config.yml starts with. */
  newFile?: NewFileSettings;
  /** The routes to publish, read from the ledger at the start of each cycle. */
  readLedger: () => readonly LedgerRule[] | Promise<readonly LedgerRule[]>;
  /** Hostnames whose hand-written rules go too (adopted routes being deleted); none when absent. */
  readRetired?: () => readonly string[];
  /** Writes an adopted hand edit into the ledger (policy `adopt-edit`). */
  adoptEdit?: (edit: AdoptedEdit) => void | Promise<void>;
  reporter?: IngressReporter;
  /** Restarts cloudflared on the file as it is now (a replica restart); rejects when cloudflared refuses it. */
  reload: (input: ReloadInput) => Promise<void>;
}

function publish(reporter: IngressReporter | undefined, reports: readonly IngressReport[]): void {
  for (const report of reports) {
    reporter?.event(report.event);
    if (report.audit) reporter?.audit(report.audit);
  }
}

/**
 * The version rendered last, with what it holds: `write` reuses its summary instead of parsing the file again. Not
 * state a restart needs: a write re-run after a restart (the content no longer matches) summarises the text itself.
 */
type LastGenerated = { current: GeneratedConfig | null };

/** Drift check (adopting edits into the ledger, reporting), then the next version from the ledger. */
async function renderVersion(deps: IngressEffectsDeps, retire: readonly string[], last: LastGenerated): Promise<RenderOutput> {
  const ledger = await deps.readLedger();
  const { loader } = deps;
  const onDisk = await loader.readDisk();
  const checked = deps.drift.check({ lastWritten: loader.lastWrittenContent, onDisk, writes: loader.writeCount }, ledger);
  publish(deps.reporter, checked.reports);
  if (checked.refused) throw checked.refused;
  for (const edit of checked.adopted) await deps.adoptEdit?.(edit);
  const generated = generateConfig(baseDocument(checked.base, loader.lastWrittenContent, deps.newFile ?? {}), checked.ledger, retire);
  publish(deps.reporter, deps.drift.shadowReports(generated, checked.ledger));
  last.current = generated;
  return { content: generated.content, basedOn: onDisk, drift: checked.drift, shadowed: generated.shadowed, managedCount: generated.managedCount };
}

/** The loader's save of a rendered version, with the summary the render already knows. */
function saveVersion(deps: IngressEffectsDeps, rendered: RenderOutput, label: string | null, last: LastGenerated, commitDuringReload: boolean): Promise<WriteOutcome> {
  const summary = last.current?.content === rendered.content ? last.current.summary : undefined;
  return deps.loader.save({ content: rendered.content, basedOn: rendered.basedOn, ...(summary ? { summary } : {}) }, label, { commitDuringReload });
}

/** The refused version is undone: the last good one written back, reloaded unless cloudflared still runs it. */
async function restoreLastGood(deps: IngressEffectsDeps, input: RestoreInput): Promise<RestoreOutput> {
  const { loader } = deps;
  // A reload that failed before the commit made during it was collected: that commit is the refused version.
  const failedCommit = input.failedCommit ?? (await loader.takeCommit().catch(() => null));
  const what = failedCommit ? `version ${failedCommit.slice(0, 12)}` : 'the new version';
  const why = input.reloadError ? `: ${input.reloadError.message}` : '';
  const failed = input.reloadError?.code === 'GIT_FAILED' ? `git could not record ${what}` : `reload of ${what} failed`;
  const restored = await loader.restoreLastGood(`${failed}${why}`);
  if (restored.commitFailure) {
    deps.reporter?.audit({ action: 'ingress.commit', target: loader.configPath, outcome: 'error', errorCode: 'GIT_FAILED', details: { ...restored.commitFailure } });
  }
  // cloudflared refused the new file and its previous process kept serving: if that process already runs the
  // restored version, reloading it again would only start a needless replica.
  const needsReload = !(input.reloadError?.keptRunning === true && loader.isRunning(restored.content));
  return { commit: restored.commit, needsReload, failedCommit };
}

/** The ingress machine's actors, for `ingressMachine.provide({ actors: ingressActors(deps) })`. */
export function ingressActors(deps: IngressEffectsDeps) {
  const { loader } = deps;
  const last: LastGenerated = { current: null };
  return {
    render: fromPromise<RenderOutput, RenderInput>(async () => renderVersion(deps, deps.readRetired?.() ?? [], last)),
    write: fromPromise<WriteOutput, WriteInput>(async ({ input }) => saveVersion(deps, input.rendered, commitLabelFor(input.changes), last, true)),
    // The new version's git commit runs while cloudflared loads it: the reload is done when both are, and a commit
    // that failed (GIT_FAILED) fails it, so the version git could not record is undone like a refused one.
    reload: fromPromise<ReloadOutput, ReloadInput>(async ({ input }) => {
      await deps.reload(input);
      return { commit: await loader.takeCommit() };
    }),
    markGood: fromPromise<void, { commit: string | null }>(async () => loader.markGood()),
    restoreLastGood: fromPromise<RestoreOutput, RestoreInput>(async ({ input }) => restoreLastGood(deps, input)),
    // The hand-written part goes back to `commit`; the managed rules stay what the ledger says (never a lying ledger).
    rollback: fromPromise<WriteOutput, RollbackInput>(async ({ input }) => loader.rollbackTo(input.commit, await deps.readLedger(), deps.readRetired?.() ?? [])),
  };
}

/** The ingress machine with real effects, ready for `createActor` (or to be spawned by the supervisor). */
export function provideIngressMachine(deps: IngressEffectsDeps) {
  return ingressMachine.provide({ actors: ingressActors(deps) });
}

/** A running ingress actor: one started alone, or the supervisor's child. */
export type IngressActor = ActorRefFrom<typeof ingressMachine>;

const HAND_EDIT: IngressChange = { hostname: '*', action: 'file-edited', project: '*' };

/** Watches config.yml and calls `onEdit` when it holds something else than the version last written. Returns stop(). */
export function watchConfigFile(loader: IngressLoader, onEdit: () => void, settleMs = 200): () => void {
  const watcher = new ConfigFileWatcher(loader.configPath, (content) => content === loader.lastWrittenContent, onEdit, settleMs);
  watcher.start();
  return () => watcher.stop();
}

/** Starts an ingress actor with real effects (and, with `watch`, the file watcher feeding it hand edits). */
export function startIngressActor(deps: IngressEffectsDeps, options: { watch?: boolean } = {}): { actor: IngressActor; stop: () => void } {
  const actor = createActor(provideIngressMachine(deps));
  actor.start();
  const stopWatching = options.watch ? watchConfigFile(deps.loader, () => actor.send({ type: 'CHANGE', change: HAND_EDIT })) : () => undefined;
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
 * The outcome of a change for `hostname`: its commit when the cycle applied it, else the failure in the error shape
 * (`outcome` says what became of the change, e.g. "Nothing was published.").
 */
export function appliedOrThrow(hostname: string, outcome: Outcome, undone: string): { commit: string | null } {
  if (outcome.type === 'ingress.applied') return { commit: outcome.commit };
  if (outcome.type === 'ingress.failed') {
    throw new TunnelManagerError({
      code: outcome.error.code,
      message: `The ingress change for ${hostname} failed at ${outcome.stage}: ${outcome.error.message}`,
      fix: outcome.error.fix,
      details: { stage: outcome.stage },
    });
  }
  const restored = outcome.type === 'ingress.restored' ? 'restored' : 'NOT restored';
  if (outcome.reloadError?.code === 'GIT_FAILED') {
    // cloudflared took the version, git could not record it: it was undone, as a refused one is.
    throw new TunnelManagerError({
      code: 'GIT_FAILED',
      message: `The ingress change for ${hostname} was undone because git could not record it (${outcome.reloadError.message}); the last good version was ${restored}.`,
      fix: outcome.reloadError.fix,
      details: { stage: 'ingress', failedCommit: outcome.failedCommit },
    });
  }
  throw new TunnelManagerError({
    code: 'RELOAD_FAILED',
    message: `cloudflared refused the new config (${outcome.reloadError?.message ?? 'unknown reason'}); the last good version was ${restored}.`,
    fix: `${undone} Check \`tunnel_get_status\` and the cloudflared log; if the target looks right, retry the request.`,
    details: { failedCommit: outcome.failedCommit },
  });
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
  if (event.type === 'ingress.failed') throw new TunnelManagerError({ code: event.error.code, message: event.error.message, fix: event.error.fix, details: { commit } });
  const reason = event.reloadError?.message ?? 'unknown reason';
  throw new TunnelManagerError({
    code: 'RELOAD_FAILED',
    message: `cloudflared refused version ${commit} (${reason}); the last good version was restored.`,
    fix: 'Pick another version from `tunnel-manager config history`, and check the cloudflared log for why this one was refused.',
    details: { commit, restoredCommit: event.type === 'ingress.restored' ? event.restoredCommit : null },
  });
}

/** The ingress actor as the composition root wires it: its machine with effects, and the hand-edit watch. */
export interface IngressWiring {
  loader: IngressLoader;
  /** The ingress machine with its effects, for the supervisor's `actors`. */
  machine: ReturnType<typeof provideIngressMachine>;
  /** Tells the ingress actor about hand edits of config.yml; returns the function that stops watching. */
  watchHandEdits(): () => void;
}

export interface IngressWiringOptions {
  config: Config;
  routes: RoutesRepository;
  bus: EventBus;
  audit: AuditRepository;
  /** A child of the root actor by id (the tunnel, the ingress actor itself). */
  childOf: ChildOf;
}

export async function openIngress(options: IngressWiringOptions): Promise<IngressWiring> {
  const { config, routes } = options;
  mkdirSync(dirname(config.cloudflared.configPath), { recursive: true });
  const credentials = config.cloudflared.credentialsFile ? { credentialsFile: config.cloudflared.credentialsFile } : {};
  const loader = await IngressLoader.open({ configPath: config.cloudflared.configPath, gitBackup: config.ingress.gitBackup, ...credentials });
  const deps: IngressEffectsDeps = {
    loader,
    drift: new DriftCheck(config.cloudflared.configPath, config.ingress.driftPolicy),
    newFile: { tunnel: config.tunnel.id, ...credentials },
    readLedger: () => routes.servedRules(),
    // An adopted route is served by a hand-written rule we do not manage; when its owner deletes it, that rule goes too.
    readRetired: () => routes.retiredAdoptedHostnames(),
    adoptEdit: (edit) => {
      routes.update(edit.hostname, { service: edit.service, originRequest: edit.originRequest ?? null, targetReason: 'adopted from a hand edit of config.yml' }, Date.now());
    },
    reporter: {
      event: (event) => options.bus.publish(event.kind, event.project, event.data),
      audit: (entry) => options.audit.record({ ts: Date.now(), principal: 'system', ...entry }),
    },
    reload: () => reloadThroughTunnel(options.childOf('tunnel')),
  };
  // The file must exist before cloudflared first starts: write the current state now.
  const last: LastGenerated = { current: null };
  await saveVersion(deps, await renderVersion(deps, [], last), 'render on start', last, false);
  await loader.markGood();
  return {
    loader,
    machine: provideIngressMachine(deps),
    watchHandEdits: () => watchConfigFile(loader, () => options.childOf('ingress').send({ type: 'CHANGE', change: HAND_EDIT })),
  };
}

/** Asks the tunnel actor for a reload and waits for the answer to this very request (reloads coalesce). */
async function reloadThroughTunnel(tunnel: SupervisorChild<'tunnel'>): Promise<void> {
  const requestId = randomUUID();
  await ask(
    tunnel,
    { type: 'RELOAD', requestId },
    {
      emitted: (event) => {
        if (event.type === 'tunnel.reloaded' && event.requestIds.includes(requestId)) return { value: undefined };
        if (event.type !== 'tunnel.reload_failed' || !event.requestIds.includes(requestId)) return undefined;
        return {
          error: new TunnelManagerError({
            code: 'RELOAD_FAILED',
            message: `cloudflared did not take the new config: ${event.error}`,
            fix: event.keptRunning
              ? 'The previous cloudflared keeps serving its previous config. Check the cloudflared log and `tunnel-manager config history`.'
              : 'Check the cloudflared log and `tunnel-manager config history`; the tunnel restarts on the restored config.',
            details: { keptRunning: event.keptRunning },
          }),
        };
      },
    },
    // The tunnel machine answers every reload itself, within its own reload timeout.
    null,
  );
}
