import type { Logger } from 'pino';
import { waitFor, type AnyActorRef } from 'xstate';
import type { SupervisorMachine, SupervisorSettings } from '../../machines/supervisor.machine.ts';
import type { ManagedRuleOnDisk } from '../cloudflared/ingress/ingress-render.ts';
import type { ProcessDriver } from '../cloudflared/process-driver.ts';
import type { Config } from '../app/config/config.ts';
import type { SandboxEnvironment } from '../app/config/sandbox-mode.ts';
import { startDurableSupervisor, type DurableSupervisor } from '../app/actors/durable-supervisor.ts';
import { machinesVersion } from '../app/actors/machine-version.ts';
import { RouteRunner } from '../app/actors/route-runner.ts';
import { startStatelyInspector } from '../app/actors/stately-inspector.ts';
import type { OrphanPolicy } from '../app/effects/orphan-effects.ts';
import type { ManagerMetrics } from '../app/operations/metrics.ts';
import { ActorRepository } from '../store/actor-repository.ts';
import type { Database } from '../store/database.ts';
import type { Cleanups, Store } from './store.ts';

export function supervisorSettingsFrom(config: Config): SupervisorSettings {
  return {
    tunnel: {
      probeIntervalMs: config.health.probeIntervalSeconds * 1000,
      failuresBeforeRestart: config.health.failedProbesBeforeRestart,
      backoffMs: config.restart.backoffSeconds.map((seconds) => seconds * 1000),
      resetAfterMs: config.restart.resetAfterSeconds * 1000,
      stopGraceMs: config.restart.stopGraceSeconds * 1000,
      autostart: true,
    },
    topology: { resyncIntervalMs: config.docker.resyncSeconds * 1000 },
    zones: { refreshIntervalMs: config.cloudflare.zoneRefreshSeconds * 1000, retryDelaysMs: [5_000, 15_000, 60_000, 300_000] },
    orphans: { intervalMs: config.orphans.scanIntervalHours * 3_600_000, retryDelaysMs: [60_000, 300_000, 900_000, 3_600_000] },
  };
}

export function orphanPolicyOf(config: Config): OrphanPolicy {
  return { projectRemovedGraceHours: config.orphans.projectRemovedGraceHours };
}

/** The durable root actor (restored from its snapshot when the machines are unchanged), shown to Stately when asked. */
export async function startSupervisor(deps: {
  config: Config;
  db: Database;
  machine: SupervisorMachine;
  inspectUrl: string | undefined;
  logger: Logger;
  cleanups: Cleanups;
  beforeStart: (actor: DurableSupervisor['actor']) => void;
}): Promise<DurableSupervisor> {
  const stately = deps.inspectUrl ? await startStatelyInspector(deps.inspectUrl, deps.logger) : null;
  if (stately) deps.cleanups.push(() => stately.stop());
  return startDurableSupervisor({
    machine: deps.machine,
    settings: supervisorSettingsFrom(deps.config),
    repository: new ActorRepository(deps.db),
    machineVersion: machinesVersion(),
    logger: deps.logger,
    ...(stately ? { inspect: stately.inspect } : {}),
    beforeStart: deps.beforeStart,
  });
}

/**
 * After a restart: the route sagas that were running are resumed, and config.yml is rendered again from the ledger
 * (edits made while the service was down). Not while a lost ledger is being recovered: rendering the empty ledger
 * would take the managed rules out (and their routes down) until the zone refresh brings the rows back, which
 * re-renders anyway. Answers the runner every new saga goes through.
 */
export function resumeWork(deps: {
  supervisor: DurableSupervisor;
  store: Store;
  metrics: ManagerMetrics;
  logger: Logger;
  rulesAtBoot: ReadonlyMap<string, ManagedRuleOnDisk>;
  ingress: () => AnyActorRef;
}): RouteRunner {
  const { supervisor, logger } = deps;
  const runner = new RouteRunner(() => supervisor.actor, deps.store.bus, deps.store.audit, logger, () => supervisor.flush(), (output) => deps.metrics.sagaFinished(output));
  const resumed = runner.resumeAll();
  if (resumed > 0) logger.info({ resumed }, 'route sagas resumed after restart');
  if (deps.rulesAtBoot.size === 0) deps.ingress().send({ type: 'CHANGE', change: { hostname: '*', action: 'resync', project: '*' } });
  else logger.info({ managedRules: deps.rulesAtBoot.size }, 'empty ledger with managed rules in config.yml: recovering the routes from their records first');
  return runner;
}

/**
 * The clean stop of the actors. A child cloudflared, or the sandbox's stand-in, would be orphaned: it is stopped
 * through the tunnel actor, so the persisted snapshot says "stopped by the manager's shutdown" and the next start
 * starts cloudflared at once instead of taking the missing process for a crash. A detached production cloudflared
 * (spawn, systemd, docker) keeps running and is adopted by the next start.
 */
export async function stopActors(deps: { config: Config; supervisor: DurableSupervisor; driver: ProcessDriver; sandbox: SandboxEnvironment | null; tunnel: () => AnyActorRef; logger: Logger }): Promise<void> {
  if (deps.driver.kind !== 'child' && !deps.sandbox) {
    deps.supervisor.stop();
    return;
  }
  const tunnelActor = deps.tunnel();
  tunnelActor.send({ type: 'SHUTDOWN' });
  const graceMs = deps.config.restart.stopGraceSeconds * 1000;
  await waitFor(tunnelActor, (snapshot: { value: unknown }) => snapshot.value === 'stopped', { timeout: graceMs + 5_000 }).catch((error: unknown) =>
    deps.logger.warn({ err: error }, 'the tunnel actor did not reach stopped during shutdown; stopping cloudflared directly'),
  );
  deps.supervisor.stop();
  await deps.driver.stop(graceMs);
}
