import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { fromPromise, waitFor, type AnyActorRef } from 'xstate';
import { routeMachine } from '../../machines/route.machine.ts';
import { supervisorMachine, type SupervisorSettings } from '../../machines/supervisor.machine.ts';
import { topologyMachine } from '../../machines/topology.machine.ts';
import { tunnelMachine, type ProbeSample, type TunnelEmitted } from '../../machines/tunnel.machine.ts';
import { zonesMachine, type RefreshOutput } from '../../machines/zones.machine.ts';
import { orphansMachine, type OrphanScanOutput } from '../../machines/orphans.machine.ts';
import type { IngressEmitted } from '../../machines/ingress.machine.ts';
import type { TopologyEmitted } from '../../machines/topology.machine.ts';
import type { ZonesEmitted } from '../../machines/zones.machine.ts';
import { ZoneDirectory } from '../cloudflare/zones.ts';
import { ConfigDocument } from '../cloudflared/config-document.ts';
import { probeTunnelHealth } from '../cloudflared/health-probe.ts';
import type { HealthSample } from '../health-sample.ts';
import { provideIngressMachine, type IngressActor } from '../cloudflared/ingress-runtime.ts';
import { IngressService } from '../cloudflared/ingress-service.ts';
import type { ProcessDriver } from '../cloudflared/process-driver.ts';
import { assertAddressFree } from '../cloudflared/metrics-address.ts';
import { pushRemoteConfiguration, reloadWithReplica, restartTunnel, type ReloadResult } from '../cloudflared/replica-reload.ts';
import { SpawnDriver } from '../cloudflared/spawn-driver.ts';
import { detectTargetDrift } from '../docker/topology-drift.ts';
import { changeSetOf, topologyActors } from '../docker/topology-actors.ts';
import { TopologyTracker } from '../docker/topology-tracker.ts';
import { TunnelManagerError } from '../errors.ts';
import { PortManager } from '../ports/port-manager.ts';
import { ActorRepository } from '../store/actor-repository.ts';
import { AuditRepository } from '../store/audit-repository.ts';
import { openDatabase, type Database } from '../store/database.ts';
import { DockerRepository } from '../store/docker-repository.ts';
import { DomainsRepository } from '../store/domains-repository.ts';
import { EventsRepository } from '../store/events-repository.ts';
import { HealthRepository } from '../store/health-repository.ts';
import { PortsRepository } from '../store/ports-repository.ts';
import { RoutesRepository } from '../store/routes-repository.ts';
import { createBackend, waitForTunnelRunning, type ServiceBackend } from './backend.ts';
import { backupDir, startBackupSchedule } from './backup-schedule.ts';
import { startAnswerWatch } from './service-answer-watch.ts';
import { startLabelRoutes, type LabelRoutes } from './label-routes.ts';
import { cloudflareProviderFor } from './cloudflare-access.ts';
import { startHealthServer } from './health-server.ts';
import { createManagerMetrics, statusClass } from './metrics.ts';
import { startRetention } from './retention.ts';
import { assertInspectorUrl, startStatelyInspector } from './stately-inspector.ts';
import { startDeleteRetries } from './delete-retry.ts';
import { askActor, supervisorChild } from './supervisor-children.ts';
import { DEFAULT_METRICS_LISTEN, type Config } from './config.ts';
import { startDurableSupervisor, type DurableSupervisor } from './durable-supervisor.ts';
import { EventBus } from './event-bus.ts';
import { machinesVersion } from './machine-version.ts';
import { createProcessDriver } from './process-driver-factory.ts';
import { dueForRemoval, scanOrphans, type OrphanPolicy } from './orphans.ts';
import { managedRulesOnDisk, recoverRoutes } from './recover.ts';
import { provideRouteEffects } from './route-effects.ts';
import { RouteRunner } from './route-runner.ts';
import { startSandboxEnvironment, writeSandboxFile, type SandboxEnvironment, type SandboxFile } from './sandbox-mode.ts';
import { provideTunnelEffects } from './tunnel-effects.ts';
import { dirname } from 'node:path';

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

/**
 * What serves the backend to its callers: the MCP transports (src/mcp/service.ts). The service starts it last, once
 * the backend exists, and closes it first. It is passed in because src/app sits below src/mcp (docs/architecture.md).
 */
export interface FrontEnd {
  /** Where callers reach it (written to the sandbox's sandbox.json), or null when it is not on the network (stdio). */
  url: string | null;
  close(): Promise<void> | void;
}

export interface FrontEndContext {
  config: Config;
  backend: ServiceBackend;
  logger: Logger;
  /** The sandbox's demo tokens (project → token), or null outside the sandbox. */
  sandboxTokens: Record<string, string> | null;
}

export interface ServiceOptions {
  logger: Logger;
  /** Starts what serves the backend (the MCP transports). */
  frontEnd: (context: FrontEndContext) => Promise<FrontEnd>;
  /** Sandbox only: where the local edge listens (port 0: any free port). */
  edgeListen?: string;
  /** Route sagas wait this long for the tunnel to be ready after a reload. */
  tunnelReadyTimeoutMs?: number;
  /** How often a delete that could not delete its DNS record is retried (default 5 minutes; tests shorten it). */
  deleteRetryIntervalMs?: number;
  /** Overrides `backup.intervalHours` (tests use a short one). */
  backupIntervalMs?: number;
  /** Overrides `metrics.listen` (HOST:PORT, or `off`). */
  metricsListen?: string;
  /** A Stately inspector to send the live actors to (default: the TM_INSPECT environment variable; none when unset). */
  inspectUrl?: string;
}

export interface Service {
  config: Config;
  mode: 'sandbox' | 'production';
  db: Database;
  supervisor: DurableSupervisor;
  bus: EventBus;
  driver: ProcessDriver;
  backend: ServiceBackend;
  frontEnd: FrontEnd;
  sandbox: SandboxEnvironment | null;
  /** The sandbox's description (URLs and demo tokens), also written to <dataDir>/sandbox.json. */
  sandboxInfo: SandboxFile | null;
  stop(): Promise<void>;
}

export function splitHostPort(address: string): { host: string; port: number } {
  const index = address.lastIndexOf(':');
  return { host: address.slice(0, index).replace(/^\[|\]$/g, ''), port: Number(address.slice(index + 1)) };
}

/**
 * The composition root below MCP: configuration → store → adapters → machines.provide() → durable supervisor → the
 * front end it is given (src/mcp/service.ts passes the MCP transports).
 * Without `cloudflare.apiBaseUrl` it runs the sandbox (a local Cloudflare API emulator, a local edge and the
 * stand-in cloudflared), so the whole journey works with no account.
 */
export async function startService(config: Config, options: ServiceOptions): Promise<Service> {
  const { logger } = options;
  const inspectUrl = options.inspectUrl ?? process.env.TM_INSPECT;
  if (inspectUrl) assertInspectorUrl(inspectUrl);
  const mode = config.cloudflare.apiBaseUrl ? 'production' : 'sandbox';
  const { db, migration } = openDatabase(config.databasePath);
  if (migration.applied.length > 0) logger.info({ migration }, 'database migrated');
  const cleanups: (() => Promise<void> | void)[] = [
    () => {
      db.close();
    },
  ];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await Promise.resolve(step()).catch((error: unknown) => logger.error({ err: error }, 'cleanup step failed'));
  };

  try {
    const routes = new RoutesRepository(db);
    // The managed rules config.yml holds before anything renders it again: with a lost ledger (no row at all), they
    // and the records' ownership markers are what the first zone refresh recovers the routes from.
    const rulesAtBoot = routes.list().length === 0 ? managedRulesOnDisk(config.cloudflared.configPath) : new Map();
    const domains = new DomainsRepository(db);
    const events = new EventsRepository(db);
    const audit = new AuditRepository(db);
    const health = new HealthRepository(db);
    const bus = new EventBus(events);
    // The manager's metrics; the tunnel's figures are read from the backend once it exists.
    const statusRef: { current: (() => { state: string; restartCount: number; consecutiveFailures: number; currentDelayMs: number; readyConnections: number | null }) | null } = { current: null };
    const metrics = createManagerMetrics({
      routes: () => routes.list(),
      tunnel: () => statusRef.current?.() ?? { state: 'booting', restartCount: 0, consecutiveFailures: 0, currentDelayMs: 0, readyConnections: null },
    });
    const ports = new PortManager(new PortsRepository(db), config.projects);

    // ── Cloudflare (or the sandbox's emulator and edge) ──────────────────────────
    const sandbox = mode === 'sandbox' ? await startSandboxEnvironment(config, { ...(options.edgeListen ? { edgeListen: options.edgeListen } : {}), logger }) : null;
    if (sandbox) cleanups.push(() => sandbox.close());
    const provider = cloudflareProviderFor(config, {
      sandbox,
      onResponse: (method, status, durationMs) => metrics.cloudflareRequest(method, status === null ? 'network' : statusClass(status), durationMs),
    });
    const zones = new ZoneDirectory({ listZones: () => provider.listZones(), domains, defaultZone: config.tunnel.defaultZone });

    // ── cloudflared ──────────────────────────────────────────────────────────────
    if (!sandbox && config.cloudflared.metricsAddress.endsWith(':0')) {
      throw new TunnelManagerError({
        code: 'CONFIG_INVALID',
        message: `cloudflared.metricsAddress is ${config.cloudflared.metricsAddress}: port 0 means "a free port" only in the sandbox; a real cloudflared must be probed on a fixed address.`,
        fix: 'Set cloudflared.metricsAddress to a fixed HOST:PORT nobody else uses (cloudflared\'s default is 127.0.0.1:20241; reloads also use the next port).',
        details: { metricsAddress: config.cloudflared.metricsAddress },
      });
    }
    const docker = new Dockerode({ socketPath: config.docker.socketPath });
    const driver = createProcessDriver(config, {
      ...(sandbox ? { env: sandbox.cloudflaredEnv } : {}),
      ...(sandbox?.metricsAddresses ? { metricsAddresses: sandbox.metricsAddresses } : {}),
      logger,
      docker,
    });
    const metricsAddress = () => (driver instanceof SpawnDriver ? driver.metricsAddress() : (sandbox?.metricsAddresses?.[0] ?? config.cloudflared.metricsAddress));
    if (driver instanceof SpawnDriver) {
      // A manager killed during a reload leaves its replica (or the old process it was draining) running.
      const reaped = await driver.reapAbandoned((config.reload.drainGraceSeconds + 5) * 1000);
      if (reaped.length > 0) logger.warn({ pids: reaped }, 'stopped cloudflared processes left behind by an unfinished reload');
    }
    // Only the samples the tunnel actor acts on enter the health history (not the polls while a start waits
    // for readiness, which would count a healthy start as failed samples).
    const fullSample = new WeakMap<ProbeSample, HealthSample>();
    let lastRollup = 0;
    const probe = async (): Promise<ProbeSample> => {
      const sample = await probeTunnelHealth({
        driver,
        metricsAddress,
        expectedConnections: config.cloudflared.expectedConnections,
        timeoutMs: config.health.probeTimeoutSeconds * 1000,
      });
      const brief: ProbeSample = { at: sample.ts, result: sample.result, readyConnections: sample.readyConnections, ...(sample.error ? { error: sample.error } : {}) };
      fullSample.set(brief, sample);
      return brief;
    };
    const recordSample = (brief: ProbeSample): void => {
      const sample = fullSample.get(brief);
      if (!sample) return;
      health.insert(sample);
      if (sample.ts - lastRollup > 3_600_000) {
        lastRollup = sample.ts;
        health.rollupAndPrune(sample.ts, config.health.rawRetentionDays);
      }
    };
    const reloadCloudflared = async (_input: unknown, signal?: AbortSignal): Promise<ReloadResult> => {
      if (config.tunnel.remotelyManaged) {
        const content = readFileSync(config.cloudflared.configPath, 'utf8');
        const current = await driver.current();
        return pushRemoteConfiguration({
          config: ConfigDocument.parse(content).model(),
          putConfiguration: (model) => provider.putTunnelConfiguration({ ingress: model.ingress, ...(model.originRequest ? { originRequest: model.originRequest } : {}) }),
          currentPid: current?.pid ?? null,
        });
      }
      if (driver instanceof SpawnDriver && config.reload.strategy === 'replica') {
        return reloadWithReplica({
          driver,
          readyTimeoutMs: config.reload.replicaReadyTimeoutSeconds * 1000,
          drainGraceMs: (config.reload.drainGraceSeconds + 5) * 1000,
          logger,
          assertAddressFree,
          ...(signal ? { signal } : {}),
        });
      }
      return restartTunnel(driver, config.restart.stopGraceSeconds * 1000);
    };

    // ── ingress file ─────────────────────────────────────────────────────────────
    // Set before the supervisor starts (beforeStart): restored children resume their effects during start().
    let supervisorActor: DurableSupervisor['actor'] | null = null;
    const childOf = (id: string): AnyActorRef => supervisorChild(supervisorActor ?? undefined, id);
    mkdirSync(dirname(config.cloudflared.configPath), { recursive: true });
    const ingressService = await IngressService.open({
      configPath: config.cloudflared.configPath,
      gitBackup: config.ingress.gitBackup,
      driftPolicy: config.ingress.driftPolicy,
      tunnel: config.tunnel.id,
      ...(config.cloudflared.credentialsFile ? { credentialsFile: config.cloudflared.credentialsFile } : {}),
      reporter: {
        event: (event) => bus.publish(event.kind, event.project, event.data),
        audit: (entry) => audit.record({ ts: Date.now(), principal: 'system', ...entry }),
      },
      adoptEdit: (edit) => {
        routes.update(edit.hostname, { service: edit.service, originRequest: edit.originRequest ?? null, targetReason: 'adopted from a hand edit of config.yml' }, Date.now());
      },
    });
    const readLedger = () =>
      routes
        .list()
        .filter((route) => route.service !== null && ['pending', 'active', 'adopted'].includes(route.status))
        .map((route) => ({
          hostname: route.hostname,
          path: route.path,
          service: route.service as string,
          project: route.project,
          targetReason: route.targetReason,
          originRequest: route.originRequest,
        }));
    // An adopted route is served by a hand-written rule we do not manage; when its owner deletes it, that rule goes too.
    const readRetired = () => routes.withStatus('deleting').filter((route) => route.source === 'adopted').map((route) => route.hostname);
    // The file must exist before cloudflared first starts: write the current state now.
    const initial = await ingressService.render(readLedger());
    await ingressService.write(initial, 'tunnel-manager: render on start');
    await ingressService.markGood();
    const reloadThroughTunnel = async (): Promise<void> => {
      const tunnel = childOf('tunnel');
      const requestId = randomUUID();
      type Emitted<K extends TunnelEmitted['type']> = Extract<TunnelEmitted, { type: K }>;
      await askActor<void>(
        tunnel,
        {
          'tunnel.reloaded': (event: Emitted<'tunnel.reloaded'>) => (event.requestIds.includes(requestId) ? { value: undefined } : undefined),
          'tunnel.reload_failed': (event: Emitted<'tunnel.reload_failed'>) =>
            event.requestIds.includes(requestId)
              ? {
                  error: new TunnelManagerError({
                    code: 'RELOAD_FAILED',
                    message: `cloudflared did not take the new config: ${event.error}`,
                    fix: event.keptRunning
                      ? 'The previous cloudflared keeps serving its previous config. Check the cloudflared log and `tunnel-manager config history`.'
                      : 'Check the cloudflared log and `tunnel-manager config history`; the tunnel restarts on the restored config.',
                    details: { keptRunning: event.keptRunning },
                  }),
                }
              : undefined,
        },
        () => tunnel.send({ type: 'RELOAD', requestId }),
      );
    };

    // ── Docker topology ──────────────────────────────────────────────────────────
    const tracker = new TopologyTracker(docker, new DockerRepository(db));

    // ── the actor tree ───────────────────────────────────────────────────────────
    const tunnel = provideTunnelEffects(tunnelMachine, {
      driver,
      probe,
      reload: reloadCloudflared,
      metricsAddress,
      onSample: recordSample,
      startTimeoutMs: config.restart.startTimeoutSeconds * 1000,
      logger,
    });
    const zonesWithEffects = zonesMachine.provide({
      actors: {
        refreshZones: fromPromise<RefreshOutput, { adopt: boolean }>(async ({ input }) => {
          const refreshed = await zones.refresh();
          const adopted = input.adopt
            ? (
                await recoverRoutes({
                  provider,
                  routes,
                  ports,
                  zones: zones.list(),
                  adoptOwner: config.cloudflare.adoptOwner,
                  // A lost ledger: routes whose record carries our marker and whose managed rule is still in config.yml
                  // come back as they were, their ports allocated to their projects again.
                  managedRules: rulesAtBoot,
                })
              ).adoption
            : { adopted: [] as { hostname: string }[] };
          return {
            zones: refreshed.zones.length,
            added: refreshed.added,
            removed: refreshed.removed,
            adopted: adopted.adopted.map((route) => route.hostname),
          };
        }),
      },
    });
    const orphanPolicy: OrphanPolicy = { projectRemovedGraceHours: config.orphans.projectRemovedGraceHours };
    const projectNames = new Set(config.projects.map((project) => project.name));
    // Set once the backend exists: removes the routes that are due (expired, or of a removed project past its grace).
    const removeDueRoutesRef: { current: () => void } = { current: () => undefined };
    const orphansWithEffects = orphansMachine.provide({
      actors: {
        scanOrphans: fromPromise<OrphanScanOutput, void>(async () => {
          const result = await scanOrphans({
            routes,
            allocations: () => ports.list(),
            projects: () => projectNames,
            provider,
            zones: () => domains.list(),
            policy: orphanPolicy,
            publish: (kind, project, data) => bus.publish(kind, project, data),
          });
          logger.info({ routes: result.routes, orphans: result.orphans.length, newlyOrphaned: result.newlyOrphaned, resolved: result.resolved }, 'orphan scan');
          // A grace period of 0 means "at the scan": do not wait for the next minute's sweep.
          removeDueRoutesRef.current();
          return result;
        }),
      },
    });
    const routeRunnerRef: { current: RouteRunner | null } = { current: null };
    const machine = supervisorMachine.provide({
      actors: {
        tunnel,
        topology: topologyMachine.provide(topologyActors(docker, tracker)),
        zones: zonesWithEffects,
        ingress: provideIngressMachine({ service: ingressService, readLedger, readRetired, reload: reloadThroughTunnel }),
        orphans: orphansWithEffects,
        route: provideRouteEffects(routeMachine, {
          routes,
          domains,
          provider,
          ingress: () => childOf('ingress') as unknown as IngressActor,
          tunnelReady: () => waitForTunnelRunning(childOf('tunnel'), options.tunnelReadyTimeoutMs ?? 60_000),
          bus,
          audit,
        }),
      },
    });
    const stately = inspectUrl ? await startStatelyInspector(inspectUrl, logger) : null;
    if (stately) cleanups.push(() => stately.stop());
    const supervisor = startDurableSupervisor({
      machine,
      settings: supervisorSettingsFrom(config),
      repository: new ActorRepository(db),
      machineVersion: machinesVersion(),
      logger,
      ...(stately ? { inspect: stately.inspect } : {}),
      beforeStart: (actor) => {
        supervisorActor = actor;
      },
    });
    cleanups.push(async () => {
      // A child cloudflared, or the sandbox's stand-in, would be orphaned: stop it. A detached production
      // cloudflared (spawn, systemd, docker) keeps running and is adopted by the next start.
      if (driver.kind === 'child' || sandbox) {
        // Through the tunnel actor, so the persisted snapshot says "stopped by the manager's shutdown": the next
        // start starts cloudflared at once instead of taking the missing process for a crash (and backing off).
        const tunnelActor = childOf('tunnel');
        tunnelActor.send({ type: 'SHUTDOWN' });
        const graceMs = config.restart.stopGraceSeconds * 1000;
        await waitFor(tunnelActor, (snapshot: { value: unknown }) => snapshot.value === 'stopped', { timeout: graceMs + 5_000 }).catch((error: unknown) =>
          logger.warn({ err: error }, 'the tunnel actor did not reach stopped during shutdown; stopping cloudflared directly'),
        );
        supervisor.stop();
        await driver.stop(graceMs);
      } else {
        supervisor.stop();
      }
    });
    const stopWatching = ingressService.watch(() =>
      childOf('ingress').send({ type: 'CHANGE', change: { hostname: '*', action: 'file-edited', project: '*' } }),
    );
    cleanups.push(stopWatching);

    // ── what the actors tell the world ───────────────────────────────────────────
    const onTunnel = (event: TunnelEmitted) => {
      if (event.type === 'tunnel.reloaded') {
        metrics.reload(event.outcome?.strategy ?? 'on-next-start', 'ok');
        return;
      }
      if (event.type === 'tunnel.reload_failed') metrics.reload(config.reload.strategy, 'failed');
      const { type, at, ...data } = event;
      bus.publish(type, '*', data, at);
      logger.info({ event: type, ...data }, `tunnel event: ${type}`);
    };
    childOf('tunnel').on('*', onTunnel);
    // Set once the backend exists; every topology change brings label routes in line.
    let labelRoutes: LabelRoutes | null = null;
    childOf('topology').on('*', (event: TopologyEmitted) => {
      metrics.dockerEvent(event.type.replace(/^topology\./, ''));
      if (event.type === 'topology.unavailable') logger.warn({ error: event.error, attempt: event.attempt }, 'Docker is unavailable; host targets keep working');
      if (event.type !== 'topology.changed') return;
      void labelRoutes?.reconcile();
      const change = changeSetOf(event.update);
      if (!change) return;
      const findings = detectTargetDrift({
        routes: routes.list().filter((r) => r.status === 'active' && r.service !== null).map((r) => ({ hostname: r.hostname, project: r.project, service: r.service as string, targetPort: r.targetPort })),
        before: change.before,
        after: change.after,
        ...(config.docker.cloudflaredContainer ? { cloudflared: { containerName: config.docker.cloudflaredContainer } } : {}),
      });
      for (const finding of findings) {
        bus.publish(finding.event.kind, finding.event.project, finding.event.data);
        // A working new target (e.g. the container was renamed) is applied through the ingress actor, the only writer.
        const proposal = finding.proposal;
        if (proposal?.ok && proposal.target !== finding.previousTarget) {
          routes.update(finding.hostname, { service: proposal.target, targetReason: `re-targeted after ${finding.cause}: ${proposal.reason}` }, Date.now());
          childOf('ingress').send({ type: 'CHANGE', change: { hostname: finding.hostname, action: 'update', project: finding.project, target: proposal.target } });
          bus.publish('route.retargeted', finding.project, { hostname: finding.hostname, from: finding.previousTarget, to: proposal.target, cause: finding.cause });
        }
      }
    });
    childOf('zones').on('*', (event: ZonesEmitted) => {
      if (event.type === 'zones.refreshed') {
        logger.info({ zones: event.zones, added: event.added, removed: event.removed, adopted: event.adopted }, 'zones refreshed');
        if (event.adopted.length > 0) {
          bus.publish('routes.adopted', config.cloudflare.adoptOwner, { hostnames: event.adopted });
          childOf('ingress').send({ type: 'CHANGE', change: { hostname: '*', action: 'resync', project: '*' } });
        }
      } else logger.warn({ error: event.error, retryInMs: event.retryInMs }, 'zone refresh failed');
    });
    childOf('ingress').on('*', (event: IngressEmitted) => {
      if (event.type === 'ingress.restored' || event.type === 'ingress.restore_failed') {
        bus.publish(`config.${event.type === 'ingress.restored' ? 'restored' : 'restore_failed'}`, '*', {
          failedCommit: event.failedCommit,
          reloadError: event.reloadError,
        });
      }
    });

    const runner = new RouteRunner(() => supervisor.actor, bus, audit, logger, () => supervisor.flush(), (output) => metrics.sagaFinished(output));
    routeRunnerRef.current = runner;
    const resumed = runner.resumeAll();
    if (resumed > 0) logger.info({ resumed }, 'route sagas resumed after restart');
    // Re-render from the ledger once at boot: picks up edits made while the service was down. Not while a lost ledger
    // is being recovered: rendering the empty ledger would take the managed rules out (and their routes down) until the
    // zone refresh brings the rows back, which re-renders anyway.
    if (rulesAtBoot.size === 0) childOf('ingress').send({ type: 'CHANGE', change: { hostname: '*', action: 'resync', project: '*' } });
    else logger.info({ managedRules: rulesAtBoot.size }, 'empty ledger with managed rules in config.yml: recovering the routes from their records first');

    const backend = createBackend({
      config,
      db,
      supervisor: () => supervisor.actor,
      flushSnapshot: () => supervisor.flush(),
      routes,
      domains,
      events,
      audit,
      health,
      ports,
      bus,
      provider,
      zones,
      runner,
      topology: tracker,
      docker,
      metricsAddress,
    });
    statusRef.current = () => backend.status();
    // Every tool call's audit row (it has a duration) is also counted and timed.
    const recordAudit = backend.recordAudit.bind(backend);
    backend.recordAudit = (entry) => {
      recordAudit(entry);
      if (entry.durationMs !== null && entry.principal !== 'system') metrics.toolCall(entry.action, entry.outcome, entry.durationMs);
    };
    const metricsListen = options.metricsListen ?? (sandbox && config.metrics.listen === DEFAULT_METRICS_LISTEN ? '127.0.0.1:0' : config.metrics.listen);
    const healthServer =
      metricsListen === 'off'
        ? null
        : await startHealthServer({
            ...splitHostPort(metricsListen),
            registry: metrics.registry,
            readiness: () => {
              const state = backend.status().state;
              return state.startsWith('running') ? { ready: true, reason: `tunnel ${state}` } : { ready: false, reason: `tunnel ${state}: not serving yet` };
            },
            cloudflaredMetricsAddress: () => (backend.status().pid === null ? null : metricsAddress()),
            logger,
          });
    if (healthServer) cleanups.push(() => healthServer.close());
    // Deletes whose DNS record could not be deleted are tried again until the record is gone.
    cleanups.push(
      startBackupSchedule({ db, dir: backupDir(config), intervalMs: options.backupIntervalMs ?? config.backup.intervalHours * 3_600_000, keep: config.backup.keep, logger }),
    );
    const answerWatch = startAnswerWatch({
      routes,
      bus,
      check: (target) => backend.verifyTarget(target),
      intervalMs: config.publishAhead.checkSeconds * 1000,
      noticeAfterMs: config.publishAhead.noticeAfterMinutes * 60_000,
      logger,
    });
    cleanups.push(() => answerWatch.stop());
    if (config.labels.enabled) {
      const labels = startLabelRoutes({
        topology: () => tracker.current(),
        backend,
        routes,
        ports,
        bus,
        logger,
        graceMs: config.labels.releaseGraceSeconds * 1000,
        intervalMs: Math.max(1_000, Math.min(30_000, (config.labels.releaseGraceSeconds * 1000) / 2)),
        operatorProject: config.projects.find((project) => project.role === 'ms')?.name ?? config.cloudflare.adoptOwner,
      });
      labelRoutes = labels;
      cleanups.push(() => labels.stop());
      void labels.reconcile();
    }
    cleanups.push(startRetention({ audit, events, auditDays: config.retention.auditDays, eventsDays: config.retention.eventsDays, logger }));
    cleanups.push(startDeleteRetries({ routes, retry: (hostname) => backend.retryDelete(hostname), logger, ...(options.deleteRetryIntervalMs ? { intervalMs: options.deleteRetryIntervalMs } : {}) }));

    // Routes asked for with an expiry are removed once it has passed, and the routes of a project that left the
    // configuration once its grace period has (checked every minute, and at boot).
    const removeDueRoutes = () => {
      const all = routes.list();
      const expired = all.filter((route) => route.expiresAt !== null && route.expiresAt <= Date.now() && route.status === 'active');
      const abandoned = dueForRemoval(all, orphanPolicy, Date.now());
      const due = new Map<string, { route: (typeof all)[number]; why: string }>();
      for (const route of abandoned) due.set(route.hostname, { route, why: 'project removed' });
      for (const route of expired) due.set(route.hostname, { route, why: 'expired' });
      for (const { route, why } of due.values()) {
        backend
          .deleteCname({ project: 'system', role: 'ms' }, route.hostname)
          .then(() => logger.info({ hostname: route.hostname, project: route.project, why }, 'route removed'))
          .catch((error: unknown) => logger.warn({ err: error, hostname: route.hostname, why }, 'could not remove a route; will retry'));
      }
    };
    removeDueRoutesRef.current = removeDueRoutes;
    const expiryTimer = setInterval(removeDueRoutes, 60_000);
    expiryTimer.unref();
    cleanups.push(() => clearInterval(expiryTimer));
    removeDueRoutes();

    // ── The front end (MCP), last: every call it lets in finds the backend ready ──
    const frontEnd = await options.frontEnd({ config, backend, logger, sandboxTokens: sandbox?.tokens ?? null });
    cleanups.push(() => frontEnd.close());

    let sandboxInfo: SandboxFile | null = null;
    if (sandbox) {
      sandboxInfo = {
        mcpUrl: frontEnd.url ?? 'stdio',
        edgeUrl: sandbox.edgeUrl,
        cloudflareApiUrl: sandbox.apiBaseUrl,
        cloudflareApiToken: sandbox.apiToken,
        accountId: config.cloudflare.accountId,
        tunnelId: config.tunnel.id,
        configPath: config.cloudflared.configPath,
        databasePath: config.databasePath,
        tokens: sandbox.tokens,
        ...(healthServer ? { metricsUrl: `${healthServer.url}/metrics`, healthUrl: `${healthServer.url}/healthz` } : {}),
        startedAt: new Date().toISOString(),
        pid: process.pid,
      };
      writeSandboxFile(sandbox.sandboxFile, sandboxInfo);
    }

    let stopping: Promise<void> | null = null;
    return {
      config,
      mode,
      db,
      supervisor,
      bus,
      driver,
      backend,
      frontEnd,
      sandbox,
      sandboxInfo,
      stop() {
        stopping ??= cleanup();
        return stopping;
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
