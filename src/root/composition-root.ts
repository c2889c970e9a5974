import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { routeMachine } from '../../machines/route.machine.ts';
import { supervisorMachine } from '../../machines/supervisor.machine.ts';
import { topologyMachine } from '../../machines/topology.machine.ts';
import { tunnelMachine } from '../../machines/tunnel.machine.ts';
import type { CloudflareProvider } from '../cloudflare/cloudflare-provider.ts';
import type { ZoneDirectory } from '../cloudflare/zones.ts';
import type { ManagedRuleOnDisk } from '../cloudflared/ingress/ingress-render.ts';
import type { ProcessDriver } from '../cloudflared/process-driver.ts';
import { topologyActors } from '../app/effects/topology-effects.ts';
import { TopologyTracker } from '../docker/topology-tracker.ts';
import { portsInUse } from '../docker/ports-in-use.ts';
import { openDatabase, type Database } from '../store/database.ts';
import { DockerRepository } from '../store/docker-repository.ts';
import { reportActorEvents } from '../app/effects/actor-events.ts';
import { createBackend, waitForTunnelRunning, type ManagerBackend } from '../app/use-cases/backend.ts';
import type { Config } from '../app/config/config.ts';
import type { DurableSupervisor } from '../app/actors/durable-supervisor.ts';
import type { EventBus } from '../app/actors/event-bus.ts';
import { startManagerHealthServer } from '../app/operations/health-server.ts';
import { openIngress, type IngressWiring } from '../app/effects/ingress-effects.ts';
import type { LabelRoutes } from '../app/use-cases/label-routes.ts';
import { createManagerMetrics, type ManagerMetrics } from '../app/operations/metrics.ts';
import { provideOrphanEffects } from '../app/effects/orphan-effects.ts';
import { managedRulesOnDisk } from '../app/operations/recover.ts';
import { retargetAfterChange } from '../app/use-cases/retarget.ts';
import { provideRouteEffects } from '../app/effects/route-effects.ts';
import type { RouteExpiry } from '../app/schedules/route-expiry.ts';
import { writeSandboxInfo, type SandboxEnvironment, type SandboxFile } from '../app/config/sandbox-mode.ts';
import { assertInspectorUrl } from '../app/actors/stately-inspector.ts';
import { supervisorChild, type ChildOf } from '../app/actors/supervisor-children.ts';
import type { TunnelClient } from '../app/effects/tunnel-client.ts';
import { provideTunnelEffects } from '../app/effects/tunnel-effects.ts';
import { provideZonesEffects } from '../app/effects/zones-effects.ts';
import type { McpHttpServer } from '../mcp/http-server.ts';
import { connectAdapters } from './adapters.ts';
import { orphanPolicyOf, resumeWork, startSupervisor, stopActors } from './actor-tree.ts';
import { startMcpFrontEnd, TOOL_NAMES } from './mcp-front-end.ts';
import type { TunnelManagerOptions } from './options.ts';
import { startSchedules } from './schedules.ts';
import { openStore, type Cleanups, type Store } from './store.ts';

export type { TunnelManagerOptions } from './options.ts';

/** The running tunnel manager: what `tunnel-manager serve` starts and stops. */
export interface TunnelManager {
  config: Config;
  mode: 'sandbox' | 'production';
  db: Database;
  supervisor: DurableSupervisor;
  bus: EventBus;
  driver: ProcessDriver;
  backend: ManagerBackend;
  /** The MCP Streamable HTTP server (null when MCP is spoken over stdio). */
  mcp: McpHttpServer | null;
  sandbox: SandboxEnvironment | null;
  /** The sandbox's description (URLs and demo tokens), also written to <dataDir>/sandbox.json. */
  sandboxInfo: SandboxFile | null;
  stop(): Promise<void>;
}

/**
 * The composition root: configuration → store → adapters → machines.provide() → durable supervisor → backend →
 * schedules and health listener → the MCP transports, last, so every call they let in finds the backend ready.
 * Without `cloudflare.apiBaseUrl` it runs the sandbox (a local Cloudflare API emulator, a local edge and the
 * stand-in cloudflared), so the whole journey works with no account. Stopping closes all of it, last opened first.
 */
export async function startTunnelManager(config: Config, options: TunnelManagerOptions): Promise<TunnelManager> {
  const { logger } = options;
  const inspectUrl = options.inspectUrl ?? process.env.TM_INSPECT;
  if (inspectUrl) assertInspectorUrl(inspectUrl);
  const mode = config.cloudflare.apiBaseUrl ? 'production' : 'sandbox';
  const { db, migration } = openDatabase(config.databasePath);
  if (migration.applied.length > 0) logger.info({ migration }, 'database migrated');
  const cleanups: Cleanups = [
    () => {
      db.close();
    },
  ];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await Promise.resolve(step()).catch((error: unknown) => logger.error({ err: error }, 'cleanup step failed'));
  };
  try {
    const core = await startCore({ config, options, mode, db, inspectUrl, cleanups });
    const served = await serveCore(core, { config, options, db, cleanups });
    let stopping: Promise<void> | null = null;
    return {
      config,
      mode,
      db,
      supervisor: core.supervisor,
      bus: core.store.bus,
      driver: core.adapters.tunnelClient.driver,
      ...served,
      sandbox: core.adapters.sandbox,
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

/** What is wired before the backend exists, and reached by it through these late-bound references. */
interface LateBound {
  backend: ManagerBackend | null;
  labelRoutes: LabelRoutes | null;
  expiry: RouteExpiry | null;
}

/** The store, the metrics, the adapters, the ingress and the running actor tree, with the saga runner. */
async function startCore(deps: { config: Config; options: TunnelManagerOptions; mode: 'sandbox' | 'production'; db: Database; inspectUrl: string | undefined; cleanups: Cleanups }) {
  const { config, options, db, cleanups } = deps;
  const { logger } = options;
  const late: LateBound = { backend: null, labelRoutes: null, expiry: null };
  const store = openStore(db, config);
  // The managed rules config.yml holds before anything renders it again: with a lost ledger (no row at all), they
  // and the records' ownership markers are what the first zone refresh recovers the routes from.
  const rulesAtBoot = store.routes.count() === 0 ? managedRulesOnDisk(config.cloudflared.configPath) : new Map<string, ManagedRuleOnDisk>();
  // The manager's metrics; the tunnel's figures are read from the backend once it exists.
  const metrics = createManagerMetrics({
    routes: () => store.routes.list(),
    projects: new Set(config.projects.map((project) => project.name)),
    tunnel: () => late.backend?.status() ?? { state: 'booting', restartCount: 0, consecutiveFailures: 0, currentDelayMs: 0, readyConnections: null },
  });
  // ── Cloudflare (or the sandbox's emulator and edge), cloudflared, config.yml, Docker ──
  const adapters = await connectAdapters({ config, mode: deps.mode, edgeListen: options.edgeListen, logger, store, metrics, cleanups });
  // Set before the supervisor starts (beforeStart): restored children resume their effects during start().
  let supervisorActor: DurableSupervisor['actor'] | null = null;
  const childOf: ChildOf = (id) => supervisorChild(supervisorActor ?? undefined, id);
  const ingress = await openIngress({ config, routes: store.routes, bus: store.bus, audit: store.audit, childOf });
  const tracker = new TopologyTracker(adapters.docker, new DockerRepository(db));
  store.ports.avoidPortsInUse(() => portsInUse(tracker.current()));
  // ── the actor tree ──
  const machine = provideActors({
    config, options, store, ...adapters, tracker, ingress, rulesAtBoot, childOf, logger,
    // Removes the routes that are due (expired, or of a removed project past its grace), once the schedules run.
    afterOrphanScan: () => late.expiry?.removeDue(),
  });
  const supervisor = await startSupervisor({
    config, db, machine, inspectUrl: deps.inspectUrl, logger, cleanups,
    beforeStart: (actor) => {
      supervisorActor = actor;
    },
  });
  cleanups.push(() => stopActors({ config, supervisor, driver: adapters.tunnelClient.driver, sandbox: adapters.sandbox, tunnel: () => childOf('tunnel'), logger }));
  cleanups.push(ingress.watchHandEdits());
  reportActorEvents({
    childOf, config, bus: store.bus, metrics, logger,
    onTopologyChanged: (event) => {
      void late.labelRoutes?.reconcile();
      retargetAfterChange(event, { config, routes: store.routes, bus: store.bus, ingress: () => childOf('ingress') });
    },
  });
  const runner = resumeWork({ supervisor, store, metrics, logger, rulesAtBoot, ingress: () => childOf('ingress') });
  return { late, store, metrics, adapters, tracker, supervisor, runner };
}
type Core = Awaited<ReturnType<typeof startCore>>;

/** The backend over the core, its health listener and schedules, then the MCP transports that serve it. */
async function serveCore(core: Core, deps: { config: Config; options: TunnelManagerOptions; db: Database; cleanups: Cleanups }) {
  const { config, options, db, cleanups } = deps;
  const { store, metrics, adapters, supervisor, logger } = { ...core, logger: options.logger };
  const backend = createBackend({
    config, db, ...store, provider: adapters.provider, zones: adapters.zones, runner: core.runner, docker: adapters.docker,
    supervisor: () => supervisor.actor,
    flushSnapshot: () => supervisor.flush(),
    topology: core.tracker,
    metricsAddress: adapters.tunnelClient.metricsAddress,
  });
  core.late.backend = backend;
  timeToolCalls(backend, metrics);
  const metricsListen = options.metricsListen ?? config.metrics.listen;
  const healthServer = metricsListen === 'off' ? null : await startManagerHealthServer({ listen: metricsListen, metrics, backend, metricsAddress: adapters.tunnelClient.metricsAddress, logger });
  if (healthServer) cleanups.push(() => healthServer.close());
  const schedules = startSchedules({ config, backupIntervalMs: options.backupIntervalMs, db, store, backend, tracker: core.tracker, logger });
  cleanups.push(schedules.stop);
  core.late.labelRoutes = schedules.labelRoutes;
  core.late.expiry = schedules.expiry;
  // ── The front end (MCP), last: every call it lets in finds the backend ready ──
  const sandbox = adapters.sandbox;
  const frontEnd = await startMcpFrontEnd({ config, options, backend, logger, sandboxTokens: sandbox?.tokens ?? null });
  metrics.knowTools(TOOL_NAMES);
  cleanups.push(() => frontEnd.close());
  const sandboxInfo = sandbox ? writeSandboxInfo(sandbox, config, frontEnd.http?.url ?? null, healthServer?.url ?? null) : null;
  return { backend, mcp: frontEnd.http, sandboxInfo };
}

/** Every tool call's audit row (it has a duration) is also counted and timed in the metrics. */
function timeToolCalls(backend: ManagerBackend, metrics: ManagerMetrics): void {
  const recordAudit = backend.recordAudit.bind(backend);
  backend.recordAudit = (entry) => {
    recordAudit(entry);
    if (entry.durationMs !== null && entry.principal !== 'system') metrics.toolCall(entry.action, entry.outcome, entry.durationMs);
  };
}

/** Every machine of the tree with its effects (each from the module next to its actor: docs/architecture.md). */
function provideActors(deps: {
  config: Config;
  options: TunnelManagerOptions;
  store: Store;
  provider: CloudflareProvider;
  zones: ZoneDirectory;
  docker: Dockerode;
  tracker: TopologyTracker;
  tunnelClient: TunnelClient;
  ingress: IngressWiring;
  rulesAtBoot: ReadonlyMap<string, ManagedRuleOnDisk>;
  childOf: ChildOf;
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
        ingress: () => childOf('ingress'),
        tunnelReady: () => waitForTunnelRunning(childOf('tunnel'), deps.options.tunnelReadyTimeoutMs ?? 60_000),
        bus: store.bus,
        audit: store.audit,
        routesPerProject: config.limits.routesPerProject,
        ...(deps.options.deleteRetryDelaysMs ? { deleteRetryDelaysMs: deps.options.deleteRetryDelaysMs } : {}),
      }),
    },
  });
}
