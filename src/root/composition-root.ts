import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { waitFor, type AnyActorRef } from 'xstate';
import { routeMachine } from '../../machines/route.machine.ts';
import { supervisorMachine, type SupervisorSettings } from '../../machines/supervisor.machine.ts';
import { topologyMachine } from '../../machines/topology.machine.ts';
import { tunnelMachine } from '../../machines/tunnel.machine.ts';
import type { CloudflareProvider } from '../cloudflare/cloudflare-provider.ts';
import { ZoneDirectory } from '../cloudflare/zones.ts';
import type { ManagedRuleOnDisk } from '../cloudflared/ingress-render.ts';
import type { ProcessDriver } from '../cloudflared/process-driver.ts';
import { topologyActors } from '../app/effects/topology-effects.ts';
import { TopologyTracker } from '../docker/topology-tracker.ts';
import { portsInUse } from '../docker/ports-in-use.ts';
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
import { reportActorEvents } from '../app/effects/actor-events.ts';
import { createBackend, waitForTunnelRunning, type ServiceBackend } from '../app/use-cases/backend.ts';
import { backupDir, startBackupSchedule } from '../app/schedules/backup-schedule.ts';
import { cloudflareProviderFor } from '../app/config/cloudflare-access.ts';
import { labelProjectsOf, type Config } from '../app/config/config.ts';
import { startDeleteRetries } from '../app/schedules/delete-retry.ts';
import { startDurableSupervisor, type DurableSupervisor } from '../app/actors/durable-supervisor.ts';
import { EventBus } from '../app/actors/event-bus.ts';
import { startManagerHealthServer } from '../app/operations/health-server.ts';
import { openIngress, type IngressActor, type IngressWiring } from '../app/effects/ingress-effects.ts';
import { startLabelRoutes, type LabelRoutes } from '../app/use-cases/label-routes.ts';
import { machinesVersion } from '../app/actors/machine-version.ts';
import { createManagerMetrics, statusClass, type ManagerMetrics } from '../app/operations/metrics.ts';
import { provideOrphanEffects, type OrphanPolicy } from '../app/effects/orphan-effects.ts';
import { managedRulesOnDisk } from '../app/operations/recover.ts';
import { retargetAfterChange } from '../app/use-cases/retarget.ts';
import { startRetention } from '../app/schedules/retention.ts';
import { provideRouteEffects } from '../app/effects/route-effects.ts';
import { startRouteExpiry, type RouteExpiry } from '../app/schedules/route-expiry.ts';
import { RouteRunner } from '../app/actors/route-runner.ts';
import { startSandboxEnvironment, writeSandboxInfo, type SandboxEnvironment, type SandboxFile } from '../app/config/sandbox-mode.ts';
import { startAnswerWatch } from '../app/schedules/origin-answer-watch.ts';
import { assertInspectorUrl, startStatelyInspector } from '../app/actors/stately-inspector.ts';
import { supervisorChild } from '../app/actors/supervisor-children.ts';
import { createTunnelClient, type TunnelClient } from '../app/effects/tunnel-client.ts';
import { provideTunnelEffects } from '../app/effects/tunnel-effects.ts';
import { provideZonesEffects } from '../app/effects/zones-effects.ts';

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
 * What serves the backend to its callers: the MCP transports (src/root/mcp-service.ts). The service starts it last, once
 * the backend exists, and closes it first. It is passed in because src/app sits below src/mcp (docs/architecture.md).
 */
export interface FrontEnd {
  /** Where callers reach it (written to the sandbox's sandbox.json), or null when it is not on the network (stdio). */
  url: string | null;
  /** The names of the tools it serves (the metrics' `tool` label takes only these). */
  tools: readonly string[];
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
  /** When a delete that could not delete its DNS record is retried, after each failure (default DELETE_RETRY_DELAYS_MS). */
  deleteRetryDelaysMs?: readonly number[];
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

export { splitHostPort } from '../host-port.ts';

/**
 * The composition root below MCP: configuration → store → adapters → machines.provide() → durable supervisor → the
 * front end it is given (src/root/mcp-service.ts passes the MCP transports).
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
    const store = openStore(db, config);
    // The managed rules config.yml holds before anything renders it again: with a lost ledger (no row at all), they
    // and the records' ownership markers are what the first zone refresh recovers the routes from.
    const rulesAtBoot = store.routes.count() === 0 ? managedRulesOnDisk(config.cloudflared.configPath) : new Map<string, ManagedRuleOnDisk>();
    // The manager's metrics; the tunnel's figures are read from the backend once it exists.
    let backendRef: ServiceBackend | null = null;
    const metrics = createManagerMetrics({
      routes: () => store.routes.list(),
      projects: new Set(config.projects.map((project) => project.name)),
      tunnel: () => backendRef?.status() ?? { state: 'booting', restartCount: 0, consecutiveFailures: 0, currentDelayMs: 0, readyConnections: null },
    });

    // ── Cloudflare (or the sandbox's emulator and edge), cloudflared, config.yml, Docker ──
    const { sandbox, provider, zones, docker, tunnelClient } = await connectAdapters({ config, options, mode, store, metrics, cleanups });
    // Set before the supervisor starts (beforeStart): restored children resume their effects during start().
    let supervisorActor: DurableSupervisor['actor'] | null = null;
    const childOf = (id: string): AnyActorRef => supervisorChild(supervisorActor ?? undefined, id);
    const ingress = await openIngress({ config, routes: store.routes, bus: store.bus, audit: store.audit, childOf });
    const tracker = new TopologyTracker(docker, new DockerRepository(db));
    store.ports.avoidPortsInUse(() => portsInUse(tracker.current()));

    // ── the actor tree ───────────────────────────────────────────────────────────
    // Set once the backend exists: removes the routes that are due (expired, or of a removed project past its grace).
    let expiry: RouteExpiry | null = null;
    const machine = provideActors({
      config, options, store, provider, zones, docker, tracker, tunnelClient, ingress, rulesAtBoot, childOf, logger,
      afterOrphanScan: () => expiry?.removeDue(),
    });
    const supervisor = await startSupervisor({
      config, db, machine, inspectUrl, logger, cleanups,
      beforeStart: (actor) => {
        supervisorActor = actor;
      },
    });
    cleanups.push(() => stopActors({ config, supervisor, driver: tunnelClient.driver, sandbox, tunnel: () => childOf('tunnel'), logger }));
    cleanups.push(ingress.watchHandEdits());
    let labelRoutes: LabelRoutes | null = null;
    reportActorEvents({
      childOf, config, bus: store.bus, metrics, logger,
      onTopologyChanged: (event) => {
        void labelRoutes?.reconcile();
        retargetAfterChange(event, { config, routes: store.routes, bus: store.bus, ingress: () => childOf('ingress') });
      },
    });

    const runner = resumeWork({ supervisor, store, metrics, logger, rulesAtBoot, ingress: () => childOf('ingress') });

    const backend = createBackend({
      config, db, ...store, provider, zones, runner, docker,
      supervisor: () => supervisor.actor,
      flushSnapshot: () => supervisor.flush(),
      topology: tracker,
      metricsAddress: tunnelClient.metricsAddress,
    });
    backendRef = backend;
    timeToolCalls(backend, metrics);
    const metricsListen = options.metricsListen ?? config.metrics.listen;
    const healthServer = metricsListen === 'off' ? null : await startManagerHealthServer({ listen: metricsListen, metrics, backend, metricsAddress: tunnelClient.metricsAddress, logger });
    if (healthServer) cleanups.push(() => healthServer.close());
    const schedules = startSchedules({ config, options, db, store, backend, tracker, logger });
    cleanups.push(schedules.stop);
    labelRoutes = schedules.labelRoutes;
    expiry = schedules.expiry;

    // ── The front end (MCP), last: every call it lets in finds the backend ready ──
    const frontEnd = await options.frontEnd({ config, backend, logger, sandboxTokens: sandbox?.tokens ?? null });
    metrics.knowTools(frontEnd.tools);
    cleanups.push(() => frontEnd.close());
    const sandboxInfo = sandbox ? writeSandboxInfo(sandbox, config, frontEnd.url, healthServer?.url ?? null) : null;

    let stopping: Promise<void> | null = null;
    return {
      config,
      mode,
      db,
      supervisor,
      bus: store.bus,
      driver: tunnelClient.driver,
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

/** Cloudflare (or the sandbox's emulator and edge), the zones, Docker, and the client of cloudflared. */
async function connectAdapters(deps: {
  config: Config;
  options: ServiceOptions;
  mode: 'sandbox' | 'production';
  store: Store;
  metrics: ManagerMetrics;
  cleanups: (() => Promise<void> | void)[];
}) {
  const { config, options, store, metrics } = deps;
  const logger = options.logger;
  const sandbox = deps.mode === 'sandbox' ? await startSandboxEnvironment(config, { ...(options.edgeListen ? { edgeListen: options.edgeListen } : {}), logger }) : null;
  if (sandbox) deps.cleanups.push(() => sandbox.close());
  const provider = cloudflareProviderFor(config, {
    sandbox,
    onResponse: (method, status, durationMs) => metrics.cloudflareRequest(method, status === null ? 'network' : statusClass(status), durationMs),
  });
  const zones = new ZoneDirectory({ listZones: () => provider.listZones(), domains: store.domains, defaultZone: config.tunnel.defaultZone });
  const docker = new Dockerode({ socketPath: config.docker.socketPath });
  const tunnelClient = await createTunnelClient({ config, sandbox, provider, docker, health: store.health, logger });
  return { sandbox, provider, zones, docker, tunnelClient };
}

/**
 * After a restart: the route sagas that were running are resumed, and config.yml is rendered again from the ledger
 * (edits made while the service was down). Not while a lost ledger is being recovered: rendering the empty ledger
 * would take the managed rules out (and their routes down) until the zone refresh brings the rows back, which
 * re-renders anyway. Answers the runner every new saga goes through.
 */
function resumeWork(deps: {
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

/** The durable root actor (restored from its snapshot when the machines are unchanged), shown to Stately when asked. */
async function startSupervisor(deps: {
  config: Config;
  db: Database;
  machine: ReturnType<typeof provideActors>;
  inspectUrl: string | undefined;
  logger: Logger;
  cleanups: (() => Promise<void> | void)[];
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

/** Every tool call's audit row (it has a duration) is also counted and timed in the metrics. */
function timeToolCalls(backend: ServiceBackend, metrics: ManagerMetrics): void {
  const recordAudit = backend.recordAudit.bind(backend);
  backend.recordAudit = (entry) => {
    recordAudit(entry);
    if (entry.durationMs !== null && entry.principal !== 'system') metrics.toolCall(entry.action, entry.outcome, entry.durationMs);
  };
}

/** The repositories over the one database, the event bus and the port manager. */
function openStore(db: Database, config: Config) {
  const events = new EventsRepository(db);
  return {
    routes: new RoutesRepository(db),
    domains: new DomainsRepository(db),
    events,
    audit: new AuditRepository(db),
    health: new HealthRepository(db),
    bus: new EventBus(events),
    ports: new PortManager(new PortsRepository(db), config.projects),
  };
}
type Store = ReturnType<typeof openStore>;

/** Every machine of the tree with its effects (each from the module next to its actor: docs/architecture.md). */
function provideActors(deps: {
  config: Config;
  options: ServiceOptions;
  store: Store;
  provider: CloudflareProvider;
  zones: ZoneDirectory;
  docker: Dockerode;
  tracker: TopologyTracker;
  tunnelClient: TunnelClient;
  ingress: IngressWiring;
  rulesAtBoot: ReadonlyMap<string, ManagedRuleOnDisk>;
  childOf: (id: string) => AnyActorRef;
  logger: Logger;
  afterOrphanScan: () => void;
}) {
  const { config, store, provider, tunnelClient, childOf } = deps;
  const projectNames = new Set(config.projects.map((project) => project.name));
  return supervisorMachine.provide({
    actors: {
      tunnel: provideTunnelEffects(tunnelMachine, {
        driver: tunnelClient.driver,
        probe: tunnelClient.probe,
        reload: tunnelClient.reload,
        replace: tunnelClient.replace,
        metricsAddress: tunnelClient.metricsAddress,
        onSample: tunnelClient.recordSample,
        startTimeoutMs: config.restart.startTimeoutSeconds * 1000,
        logger: deps.logger,
      }),
      topology: topologyMachine.provide(topologyActors(deps.docker, deps.tracker)),
      zones: provideZonesEffects({
        config,
        zones: deps.zones,
        provider,
        routes: store.routes,
        ports: store.ports,
        rulesAtBoot: deps.rulesAtBoot,
        publish: (kind, project, data) => store.bus.publish(kind, project, data),
      }),
      ingress: deps.ingress.machine,
      orphans: provideOrphanEffects({
        routes: store.routes,
        allocations: () => store.ports.list(),
        projects: () => projectNames,
        provider,
        zones: () => store.domains.list(),
        policy: orphanPolicyOf(config),
        publish: (kind, project, data) => store.bus.publish(kind, project, data),
        logger: deps.logger,
        afterScan: deps.afterOrphanScan,
      }),
      route: provideRouteEffects(routeMachine, {
        routes: store.routes,
        domains: store.domains,
        provider,
        ingress: () => childOf('ingress') as unknown as IngressActor,
        tunnelReady: () => waitForTunnelRunning(childOf('tunnel'), deps.options.tunnelReadyTimeoutMs ?? 60_000),
        bus: store.bus,
        audit: store.audit,
        routesPerProject: config.limits.routesPerProject,
        ...(deps.options.deleteRetryDelaysMs ? { deleteRetryDelaysMs: deps.options.deleteRetryDelaysMs } : {}),
      }),
    },
  });
}

function orphanPolicyOf(config: Config): OrphanPolicy {
  return { projectRemovedGraceHours: config.orphans.projectRemovedGraceHours };
}

/**
 * The clean stop of the actors. A child cloudflared, or the sandbox's stand-in, would be orphaned: it is stopped
 * through the tunnel actor, so the persisted snapshot says "stopped by the manager's shutdown" and the next start
 * starts cloudflared at once instead of taking the missing process for a crash. A detached production cloudflared
 * (spawn, systemd, docker) keeps running and is adopted by the next start.
 */
async function stopActors(deps: { config: Config; supervisor: DurableSupervisor; driver: ProcessDriver; sandbox: SandboxEnvironment | null; tunnel: () => AnyActorRef; logger: Logger }): Promise<void> {
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

/**
 * The service's schedules beside the actors: online backups, the publish-ahead watch, label routes, retention of the
 * audit and events, retries of deletes whose DNS record could not be deleted, and route expiry.
 */
function startSchedules(deps: { config: Config; options: ServiceOptions; db: Database; store: Store; backend: ServiceBackend; tracker: TopologyTracker; logger: Logger }) {
  const { config, options, store, backend, logger } = deps;
  const stops: (() => void)[] = [];
  stops.push(startBackupSchedule({ db: deps.db, dir: backupDir(config), intervalMs: options.backupIntervalMs ?? config.backup.intervalHours * 3_600_000, keep: config.backup.keep, logger }));
  const answerWatch = startAnswerWatch({
    routes: store.routes,
    bus: store.bus,
    check: (target) => backend.verifyTarget(target),
    intervalMs: config.publishAhead.checkSeconds * 1000,
    noticeAfterMs: config.publishAhead.noticeAfterMinutes * 60_000,
    logger,
  });
  stops.push(answerWatch.stop);
  let labelRoutes: LabelRoutes | null = null;
  if (config.labels.enabled) {
    const labels = startLabelRoutes({
      topology: () => deps.tracker.current(),
      backend,
      routes: store.routes,
      bus: store.bus,
      logger,
      graceMs: config.labels.releaseGraceSeconds * 1000,
      intervalMs: Math.max(1_000, Math.min(30_000, (config.labels.releaseGraceSeconds * 1000) / 2)),
      operatorProject: config.projects.find((project) => project.role === 'ms')?.name ?? config.cloudflare.adoptOwner,
      labelProjects: labelProjectsOf(config),
      projects: new Map(config.projects.map((project) => [project.name, project.role])),
    });
    labelRoutes = labels;
    stops.push(labels.stop);
    void labels.reconcile();
  }
  stops.push(startRetention({ audit: store.audit, events: store.events, auditDays: config.retention.auditDays, eventsDays: config.retention.eventsDays, logger }));
  stops.push(startDeleteRetries({ routes: store.routes, bus: store.bus, retry: (hostname) => backend.retryDelete(hostname), logger }));
  const expiry = startRouteExpiry({ routes: store.routes, policy: orphanPolicyOf(config), backend, logger });
  stops.push(expiry.stop);
  expiry.removeDue();
  return { labelRoutes, expiry, stop: () => stops.reverse().forEach((stop) => stop()) };
}
