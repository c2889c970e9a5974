import { randomUUID } from 'node:crypto';
import type Dockerode from 'dockerode';
import type { Actor, AnyActorRef } from 'xstate';
import type { RouteRequest } from '../../machines/route.machine.ts';
import type { SupervisorMachine } from '../../machines/supervisor.machine.ts';
import type { TunnelContext } from '../../machines/tunnel.machine.ts';
import { recordExistsError } from '../cloudflare/cloudflare-provider.ts';
import { planEnsureCname } from '../cloudflare/record-plan.ts';
import type { CloudflareProvider } from '../cloudflare/cloudflare-provider.ts';
import type { ZoneDirectory } from '../cloudflare/zones.ts';
import { rollbackIngress, type IngressActor } from '../cloudflared/ingress-runtime.ts';
import { parsePrometheusText } from '../cloudflared/prometheus-text.ts';
import { locateCloudflared, type CloudflaredLocation } from '../docker/cloudflared-location.ts';
import { checkConnectivity, type ConnectivityReport } from '../docker/connectivity-check.ts';
import { gatherPortEvidence } from '../docker/port-evidence.ts';
import { detectListenAddress } from '../docker/listen-address.ts';
import { locateService, type ServiceLocation } from '../docker/service-location.ts';
import type { Topology } from '../topology-model.ts';
import { selectTarget, targetUnreachableError, type TargetChosen, type TargetSelection } from '../docker/target-selection.ts';
import { topologyToMermaid } from '../docker/topology-diagram.ts';
import type { TopologyTracker } from '../docker/topology-tracker.ts';
import { TunnelManagerError, type ErrorCode } from '../errors.ts';
import type { RollbackView } from '../contract/admin.ts';
import type { CallHooks, McpBackend } from '../contract/backend.ts';
import type { ConnectivityView, TopologyView } from '../contract/network.ts';
import type { Principal } from '../contract/principal.ts';
import type { CnameRequest, CnameResult, DeleteResult, OrphanScanResult } from '../contract/routes.ts';
import type { MetricsView, TunnelStatus } from '../contract/status.ts';
import type { PortManager } from '../ports/port-manager.ts';
import type { AuditRepository } from '../store/audit-repository.ts';
import type { DomainsRepository } from '../store/domains-repository.ts';
import type { EventsRepository } from '../store/events-repository.ts';
import type { HealthRepository } from '../store/health-repository.ts';
import type { Route, RoutesRepository } from '../store/routes-repository.ts';
import { DELETE_RETRY_INTERVAL_MS } from './delete-retry.ts';
import type { Database } from '../store/database.ts';
import type { Config } from './config.ts';
import type { EventBus } from './event-bus.ts';
import { hostnameProblems, requestedHostname } from './hostname.ts';
import { readInspection } from './inspection.ts';
import type { RouteRunner } from './route-runner.ts';
import { statusOf } from './status.ts';
import type { OrphansEmitted } from '../../machines/orphans.machine.ts';
import { askActor, supervisorChild } from './supervisor-children.ts';
import { stateToString } from './transition-recorder.ts';

export interface BackendOptions {
  config: Config;
  db: Database;
  supervisor: () => Actor<SupervisorMachine>;
  flushSnapshot: () => void;
  routes: RoutesRepository;
  domains: DomainsRepository;
  events: EventsRepository;
  audit: AuditRepository;
  health: HealthRepository;
  ports: PortManager;
  bus: EventBus;
  provider: CloudflareProvider;
  zones: ZoneDirectory;
  runner: RouteRunner;
  topology: TopologyTracker;
  docker: Dockerode | null;
  /** Where cloudflared serves /metrics now (it moves during a replica reload). */
  metricsAddress: () => string;
}

const HOUR = 3_600_000;


function isRunning(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'running' in value;
}

/** Waits until the tunnel actor is running (up or degraded), or gives up with TUNNEL_NOT_RUNNING. */
export function waitForTunnelRunning(tunnel: AnyActorRef, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (snapshot: { value: unknown; context: TunnelContext }) => isRunning(snapshot.value);
    if (check(tunnel.getSnapshot() as never)) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      subscription.unsubscribe();
      const snapshot = tunnel.getSnapshot() as { value: unknown; context: TunnelContext };
      reject(
        new TunnelManagerError({
          code: 'TUNNEL_NOT_RUNNING',
          message: `cloudflared is not running (state ${JSON.stringify(snapshot.value)}${snapshot.context.lastError ? `: ${snapshot.context.lastError}` : ''}).`,
          fix: 'Check tunnel_get_status; the tunnel restarts by itself on its backoff schedule. Retry the request once it is up.',
          details: { state: snapshot.value, nextStartAt: snapshot.context.backoffUntil },
        }),
      );
    }, timeoutMs);
    const subscription = tunnel.subscribe((snapshot) => {
      if (check(snapshot as never)) {
        clearTimeout(timer);
        subscription.unsubscribe();
        resolve();
      }
    });
  });
}

/** The McpBackend: what the tools do, over the real adapters and actors. */
/** The backend of the MCP tools, plus what the service's own schedules call. */
export type ServiceBackend = McpBackend & {
  /** A new delete for a route a failed delete left `deleting` (the retry schedule); null when there is none to retry. */
  retryDelete(hostname: string): Promise<DeleteResult | null>;
  /** The connectivity check for a target, from where cloudflared runs now (the publish-ahead watch uses it). */
  verifyTarget(target: string): Promise<ConnectivityReport>;
};

export function createBackend(options: BackendOptions): ServiceBackend {
  const { config, routes, ports, bus, provider, zones, runner } = options;

  const tunnelSnapshot = () => supervisorChild(options.supervisor(), 'tunnel').getSnapshot() as { value: unknown; context: TunnelContext };
  const status = (): TunnelStatus =>
    statusOf(tunnelSnapshot(), { routes: routes.count(), tunnelId: config.tunnel.id, asOf: Date.now() });

  function zoneFor(domain: string | undefined) {
    const name = (domain ?? config.tunnel.defaultZone).toLowerCase();
    const zone = options.domains.findByName(name);
    if (!zone) {
      const known = zones.list().map((z) => z.name);
      throw new TunnelManagerError({
        code: 'ZONE_NOT_FOUND',
        message:
          domain === undefined
            ? `The default zone ${name} is not a zone of this Cloudflare account.`
            : `domain ${JSON.stringify(name.slice(0, 80))} is not a zone of this Cloudflare account.`,
        fix:
          known.length > 0
            ? `Pass \`domain\` as one of: ${known.join(', ')} (tunnel_list_domains), or leave it out for the default zone.`
            : 'The zone list is empty: wait for the zones to be refreshed, then retry.',
        details: { argument: 'domain', domain: name, known },
      });
    }
    return zone;
  }

  /**
   * Runs a removal saga and says exactly what happened: done (rule, record and row gone), refused (the rule could
   * not be removed, so nothing was deleted and the route is as it was), or half done (the rule is gone but the
   * record is not: the row stays `deleting`, is retried on a schedule, and the owner may retry).
   */
  async function deprovision(route: Route, hooks: CallHooks = {}): Promise<DeleteResult> {
    const { hostname } = route;
    const output = await runner.run({
      requestId: randomUUID(),
      kind: 'deprovision',
      project: route.project,
      hostname,
      zoneId: route.zoneId,
      zoneName: route.zoneName,
      targetPort: route.targetPort,
      service: route.service,
      targetReason: route.targetReason,
      originRequest: route.originRequest,
      expiresAt: route.expiresAt,
    }, { ...(hooks.progress ? { onStep: (step: string) => hooks.progress?.(`deleting ${hostname}: ${step}`) } : {}) });
    if (!output.ok) {
      const error = output.error!;
      const after = routes.find(hostname);
      const ruleRemoved = output.timings.some((timing) => timing.step === 'removeIngress') && after?.status === 'deleting';
      if (ruleRemoved) {
        const minutes = Math.round(DELETE_RETRY_INTERVAL_MS / 60_000);
        throw new TunnelManagerError({
          code: error.code as never,
          message: `${hostname} is half deleted: its ingress rule is removed (it no longer serves), but its DNS record could not be deleted: ${error.message} The route stays listed as \`deleting\` until the record is gone.`,
          fix: `Nothing to do but wait: the delete is retried every ${minutes} minutes. To retry now, call tunnel_delete_cname { "hostname": "${hostname}" } again${error.fix ? ` (${error.fix})` : ''}.`,
          details: { ...error.details, hostname, ruleRemoved: true, dnsRecordDeleted: false, ledgerStatus: 'deleting', retryEveryMinutes: minutes },
        });
      }
      throw new TunnelManagerError({
        code: error.code as never,
        message: `${hostname} was not deleted: ${error.message} Nothing was changed: the route, its rule and its DNS record are as they were.`,
        fix: error.fix,
        details: { ...error.details, hostname, ruleRemoved: false, dnsRecordDeleted: false, ledgerStatus: after?.status ?? null },
      });
    }
    return {
      hostname,
      deleted: true,
      // The record step ran and succeeded (a route whose record was never ours, e.g. already gone, has none to delete).
      dnsRecordDeleted: output.timings.some((timing) => timing.step === 'deleteDns'),
      timings: output.timings,
    };
  }

  function whereIsCloudflared(topology: Topology): CloudflaredLocation {
    return locateCloudflared(topology, config.docker.cloudflaredContainer ? { containerName: config.docker.cloudflaredContainer } : {});
  }

  /**
   * The target for a port, from the live topology and the evidence of who listens on it (docs/docker-targets.md,
   * "The service behind a port"); `reason` says how the service was found, then why that target.
   */
  async function choose(port: number, project: string | null): Promise<{ selection: TargetSelection; cloudflared: CloudflaredLocation; found: ServiceLocation }> {
    const topology = options.topology.current();
    const cloudflared = whereIsCloudflared(topology);
    const placement = cloudflared.placement;
    const evidence = await gatherPortEvidence(options.docker, topology, port, {
      exclude: placement.kind === 'container' ? [placement.netnsOwner ?? placement.name] : [],
    });
    let found = locateService(topology, { hostPort: port, evidence, project });
    // A service in a container that publishes the port: read the address it really listens on (a loopback-only one
    // answers nobody outside).
    if (found.placement.kind === 'container' && found.container !== null && options.docker !== null && !found.placement.listenAddress) {
      const detected = await detectListenAddress(options.docker, found.container.id, found.placement.port);
      if (detected.kind === 'only') found = locateService(topology, { hostPort: port, evidence, project, listenAddress: detected.address });
    }
    const selection = selectTarget({ cloudflared: placement, service: found.placement });
    const reason = `${found.evidence}; ${selection.reason.charAt(0).toLowerCase()}${selection.reason.slice(1)}`;
    return { selection: { ...selection, reason }, cloudflared, found };
  }

  /** `limits.routesPerProject`: a new route is refused once the project holds that many (0: no limit). */
  function assertUnderRouteQuota(project: string): void {
    const quota = config.limits.routesPerProject;
    const held = routes.requestedBy(project);
    if (quota === 0 || held < quota) return;
    throw new TunnelManagerError({
      code: 'ROUTE_QUOTA_EXCEEDED',
      message: `${project} holds ${held} routes it asked for, its quota of ${quota}; nothing was created.`,
      fix: 'Delete a route you no longer need (tunnel_list_cnames, then tunnel_delete_cname) and retry, or ask the operator to raise limits.routesPerProject.',
      details: { project, routes: held, quota },
    });
  }

  function chosenOrThrow(selection: TargetSelection): TargetChosen {
    if (!selection.ok) throw targetUnreachableError(selection);
    return selection;
  }

  /** Does anything answer at the target, seen from where cloudflared runs (the check of tunnel_check_connectivity)? */
  function verify(cloudflared: CloudflaredLocation, target: string): Promise<ConnectivityReport> {
    return checkConnectivity(options.docker, {
      cloudflared: cloudflared.placement,
      target,
      ...(config.docker.probeImage ? { helperImage: config.docker.probeImage } : {}),
    });
  }

  const checkSummary = (report: ConnectivityReport) =>
    `${report.method} check ${report.vantage}: ${report.steps.map((s) => `${s.step} ${s.ok ? 'ok' : 'failed'} (${s.detail})`).join(', ') || report.error}`;

  async function connectivity(principal: Principal, port: number): Promise<ConnectivityView> {
    const { selection, cloudflared } = await choose(port, principal.role === 'ms' ? null : principal.project);
    if (!selection.ok) {
      return {
        port,
        target: null,
        reason: selection.reason,
        reachable: false,
        check: 'none: no target can work with the current topology',
        latencyMs: null,
        recommendations: selection.recommendations.map((r) => ({ command: r.command ?? '(change inside the service)', explanation: r.explanation })),
      };
    }
    const report = await verify(cloudflared, selection.target);
    return {
      port,
      target: selection.target,
      reason: selection.reason,
      reachable: report.ok,
      check: checkSummary(report),
      latencyMs: report.latencyMs,
      recommendations: report.ok
        ? []
        : [
            {
              command: `curl -v ${selection.target}/`,
              explanation: `Nothing answered at ${selection.target}${report.error ? ` (${report.error})` : ''}: start your service on port ${port}, listening on all interfaces (0.0.0.0), not only 127.0.0.1 inside a container.`,
            },
          ],
    };
  }

  /**
   * Before anything is created: the target must answer from cloudflared's side, or the caller must say it publishes
   * ahead of its service. Answers the route's warning (null when the service answered).
   */
  async function answeringOrAhead(port: number, target: TargetChosen, cloudflared: CloudflaredLocation, publishAhead: boolean): Promise<string | null> {
    const report = await verify(cloudflared, target.target);
    if (report.ok) return null;
    if (report.steps.length === 0) {
      // The check itself could not run (no helper image, cloudflared's container not inspectable): not evidence
      // that nothing answers. Publish, and say what was not verified.
      return `not verified: the connectivity check could not run (${report.error}); set docker.probeImage to a local image with busybox, or check with tunnel_check_connectivity later`;
    }
    if (publishAhead) {
      return `published ahead of the service: nothing answered at ${target.target} when the route was made (${report.error}); you will get route.service_answering when it first answers`;
    }
    throw new TunnelManagerError({
      code: 'TARGET_NOT_ANSWERING',
      message: `Nothing answers at ${target.target} yet, seen from where cloudflared runs (${report.error}); the route would serve 502s. Nothing was created.`,
      fix:
        `Start your service on port ${port} (listening on 0.0.0.0, not only 127.0.0.1 inside a container) and retry; check with tunnel_check_connectivity { "port": ${port} }. ` +
        'To publish before the service is up, retry with "publishAhead": true (the route carries a warning until the service answers).',
      details: { port, target: target.target, reason: target.reason, check: checkSummary(report) },
    });
  }

  return {
    status,

    async metrics(): Promise<MetricsView> {
      const snapshot = tunnelSnapshot();
      const summary = options.health.summary(Date.now(), 24 * HOUR);
      let metrics: ReturnType<typeof parsePrometheusText>['samples'] = [];
      try {
        const response = await fetch(`http://${options.metricsAddress()}/metrics`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) metrics = parsePrometheusText(await response.text()).samples;
      } catch {
        // cloudflared is not answering: the counters stay null and the state says why.
      }
      const total = (name: string): number | null => {
        const samples = metrics.filter((sample) => sample.name === name);
        return samples.length === 0 ? null : samples.reduce((sum, sample) => sum + sample.value, 0);
      };
      const responsesByCode: Record<string, number> = {};
      for (const sample of metrics.filter((s) => s.name === 'cloudflared_tunnel_response_by_code')) {
        const code = sample.labels.status_code ?? 'unknown';
        responsesByCode[code] = (responsesByCode[code] ?? 0) + sample.value;
      }
      return {
        state: stateToString(snapshot.value),
        readyConnections: snapshot.context.lastProbe?.readyConnections ?? null,
        haConnections: total('cloudflared_tunnel_ha_connections'),
        totalRequests: total('cloudflared_tunnel_total_requests'),
        requestErrors: total('cloudflared_tunnel_request_errors'),
        responsesByCode,
        health: {
          samples24h: summary.samples,
          failedSamples24h: summary.failed,
          uptimePct24h: summary.uptimePct,
          latencyAvgMs24h: summary.latencyAvgMs,
        },
      };
    },

    async restartTunnel(by: Principal): Promise<TunnelStatus> {
      const tunnel = supervisorChild(options.supervisor(), 'tunnel');
      const before = tunnelSnapshot();
      // A restart takes the tunnel down on purpose: the tunnel machine emits nothing for that (it reports
      // failures), so say it here, for the events log and the subscribers of tunnel://status. A tunnel that was
      // already down (backoff) reports its own recovery when it starts.
      const wasUp = before.context.downSince === null;
      const downAt = Date.now();
      if (wasUp) bus.publish('tunnel.down', '*', { reason: `restart requested by ${by.project}`, manual: true, pid: before.context.process?.pid ?? null }, downAt);
      tunnel.send({ type: 'RESTART' });
      await waitForTunnelRunning(tunnel, (config.restart.startTimeoutSeconds + config.restart.stopGraceSeconds + 5) * 1000);
      if (wasUp) bus.publish('tunnel.recovered', '*', { downForMs: Date.now() - downAt, pid: tunnelSnapshot().context.process?.pid ?? null, manual: true });
      return status();
    },

    async requestCname(principal: Principal, request: CnameRequest, hooks: CallHooks = {}): Promise<CnameResult> {
      const zone = zoneFor(request.domain);
      const hostname = requestedHostname(request.subdomain, zone.name);
      ports.assertOwned(principal.project, request.targetPort);

      /** The ledger holds the name: the identical request of the owner of an active route is answered as done, anything else is a conflict. */
      const checkLedger = () => {
        const held = routes.find(hostname);
        if (held && !(held.project === principal.project && held.targetPort === request.targetPort && held.status === 'active')) {
          throw new TunnelManagerError({
            code: 'HOSTNAME_TAKEN',
            message:
              held.project === principal.project
                ? `${hostname} is already yours (${held.status}, port ${held.targetPort ?? 'unknown'}).`
                : `${hostname} belongs to ${held.project}.`,
            fix:
              held.project === principal.project
                ? `To move it to port ${request.targetPort}, delete it first (tunnel_delete_cname { "hostname": "${hostname}" }) and request it again.`
                : 'Choose another subdomain.',
            details: { hostname, owner: held.project, status: held.status },
          });
        }
        return held;
      };
      const held = checkLedger();
      if (!held) assertUnderRouteQuota(principal.project);
      // Refuse early (and accurately for dryRun) when Cloudflare has a record of that name that is not ours.
      const records = await provider.findRecords(zone.zoneId, hostname);
      // Another request may have reserved the name while we looked (and may already have made its record): that is
      // a HOSTNAME_TAKEN, not a foreign record.
      const existing = checkLedger();
      // The same plan the DNS step carries out: one rule for "this name is not ours", one refusal for it.
      const recordPlan = planEnsureCname({ hostname, owner: principal.project, tunnelTarget: provider.tunnelTarget, existing: records });
      if (recordPlan.action === 'refuse') throw recordExistsError(recordPlan, hostname, zone.zoneId);
      const chosen = await choose(request.targetPort, principal.project);
      const target = chosenOrThrow(chosen.selection);
      // An identical active route is answered as done below; anything new is checked before it is created.
      const warning = existing ? null : await answeringOrAhead(request.targetPort, target, chosen.cloudflared, request.publishAhead === true);
      const expiresAt = request.expiresInSeconds === undefined ? null : Date.now() + request.expiresInSeconds * 1000;
      const plan = [
        `reserve ${hostname} for ${principal.project} in the ledger`,
        records.length > 0 ? `reuse our CNAME ${hostname} → ${provider.tunnelTarget}` : `create the proxied CNAME ${hostname} → ${provider.tunnelTarget} marked as owned by ${principal.project}`,
        `add the ingress rule ${hostname} → ${target.target} to ${config.cloudflared.configPath}, commit it and reload cloudflared`,
        'wait until the tunnel is ready',
        'mark the route active and tell subscribers',
      ];
      const base = {
        url: `https://${hostname}`,
        hostname,
        zone: zone.name,
        target: target.target,
        reason: target.reason,
        alternatives: target.alternatives.map((a) => `${a.target} (${a.reason})`),
        plan,
        expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(),
        warning,
      };
      if (request.dryRun) return { ...base, dryRun: true, timings: [], dnsRecordId: null, commit: null };
      if (existing) {
        return { ...base, target: existing.service ?? target.target, dryRun: false, plan: ['already published: nothing to do'], timings: [], dnsRecordId: existing.dnsRecordId, commit: null };
      }

      const routeRequest: RouteRequest = {
        requestId: randomUUID(),
        kind: 'provision',
        project: principal.project,
        hostname,
        zoneId: zone.zoneId,
        zoneName: zone.name,
        targetPort: request.targetPort,
        service: target.target,
        targetReason: target.reason,
        originRequest: request.originRequest ?? null,
        expiresAt,
        ...(warning !== null && warning.startsWith('published ahead') ? { awaitingService: true } : {}),
      };
      const output = await runner.run(routeRequest, {
        ...(hooks.progress ? { onStep: (step: string) => hooks.progress?.(`publishing ${hostname}: ${step}`) } : {}),
        ...(hooks.signal ? { signal: hooks.signal } : {}),
      });
      if (!output.ok) {
        const error = output.error!;
        throw new TunnelManagerError({
          code: error.code as never,
          message: `${error.message} Everything done for this request was undone.`,
          fix: error.fix,
          details: { ...error.details, hostname, timings: output.timings, compensationErrors: output.compensationErrors },
        });
      }
      return { ...base, dryRun: false, timings: output.timings, dnsRecordId: output.dnsRecordId, commit: output.commit };
    },

    async deleteCname(_principal: Principal, asGiven: string, hooks: CallHooks = {}): Promise<DeleteResult> {
      // Errors about the argument quote it as given; everything else uses the ledger's lower-case name.
      const hostname = asGiven.toLowerCase();
      const route = routes.find(hostname);
      // A name that is no DNS name at all gets a clearer answer than "not found" (any name in the ledger,
      // adopted ones included, stays deletable whatever its form).
      const problems = route ? [] : hostnameProblems(hostname);
      if (problems.length > 0) {
        throw new TunnelManagerError({
          code: 'HOSTNAME_INVALID',
          message: `hostname ${JSON.stringify(asGiven.slice(0, 80))} is not a valid DNS name: ${problems.join('; ')}.`,
          fix: 'Pass `hostname` as tunnel_list_cnames lists it, e.g. "app.153.se".',
          details: { argument: 'hostname', problems },
        });
      }
      if (!route) {
        throw new TunnelManagerError({
          code: 'ROUTE_NOT_FOUND',
          message: `There is no route ${hostname}.`,
          fix: 'List your routes with tunnel_list_cnames.',
          details: { hostname },
        });
      }
      // A delete that left the row `deleting` with no saga (its DNS record could not be deleted) may be retried.
      const stuckDelete = route.status === 'deleting' && route.requestId === null;
      if (route.status === 'pending' || (route.status === 'deleting' && !stuckDelete)) {
        throw new TunnelManagerError({
          code: 'ROUTE_BUSY',
          message: `${hostname} is being ${route.status === 'pending' ? 'published' : 'deleted'} right now.`,
          fix: 'Wait a few seconds and retry; tunnel_list_cnames shows its status.',
          details: { hostname, status: route.status },
        });
      }
      return deprovision(route, hooks);
    },

    retryDelete: async (hostname: string) => {
      const route = routes.find(hostname);
      if (!route || route.status !== 'deleting' || route.requestId !== null) return null;
      return deprovision(route);
    },

    findRoute: (hostname) => routes.find(hostname),
    listRoutes: (filter) => routes.list(filter),
    pageRoutes: (filter) => routes.page(filter),
    listDomains: () =>
      options.domains.list().map((zone) => ({
        zoneId: zone.zoneId,
        name: zone.name,
        status: zone.status,
        plan: zone.plan,
        isDefault: zone.name === config.tunnel.defaultZone,
      })),

    verifyTarget: (target: string) => verify(whereIsCloudflared(options.topology.current()), target),
    checkConnectivity: connectivity,
    recommendConfig: connectivity,

    async topology(): Promise<TopologyView> {
      const topology = options.topology.current();
      const located = locateCloudflared(topology, config.docker.cloudflaredContainer ? { containerName: config.docker.cloudflaredContainer } : {});
      const topologyActor = supervisorChild(options.supervisor(), 'topology').getSnapshot() as { hasTag?: (tag: string) => boolean; context: { lastError: string | null } };
      const available = topologyActor.hasTag?.('available') ?? false;
      return {
        available,
        reason: available ? null : (topologyActor.context.lastError ?? 'Docker has not been reached yet'),
        cloudflared: { ...located.placement, evidence: located.evidence },
        networks: topology.networks.map((n) => ({ ...n })),
        containers: topology.containers.map((c) => ({ ...c })),
        mermaid: topologyToMermaid(topology, located.container?.name ?? null),
      };
    },

    events: (cursor, limit, project) => options.events.since(cursor, limit, project),

    async rollbackConfig(_principal: Principal, commit: string): Promise<RollbackView> {
      const ingress = supervisorChild(options.supervisor(), 'ingress') as unknown as IngressActor;
      const result = await rollbackIngress(ingress, commit);
      return { commit, restoredFrom: commit, newCommit: result.commit, reloaded: result.reloaded };
    },

    async scanOrphans(): Promise<OrphanScanResult> {
      const orphans = supervisorChild(options.supervisor(), 'orphans');
      type Emitted<K extends OrphansEmitted['type']> = Extract<OrphansEmitted, { type: K }>;
      // The first outcome after asking: a scan already running answers for this request too.
      return askActor<OrphanScanResult>(
        orphans,
        {
          'orphans.scanned': (event: Emitted<'orphans.scanned'>) => ({ value: event.result as OrphanScanResult }),
          'orphans.scan_failed': (event: Emitted<'orphans.scan_failed'>) => ({
            error: new TunnelManagerError({
              code: event.code as ErrorCode,
              message: `The orphan scan could not list the DNS records: ${event.error}`,
              fix: `Nothing was changed. The scan retries by itself in ${Math.round(event.retryInMs / 1000)} s; call tunnel_scan_orphans again later.`,
              details: { retryInMs: event.retryInMs },
            }),
          }),
        },
        () => orphans.send({ type: 'SCAN' }),
      );
    },

    audit: (query) => options.audit.recent(query.limit, { ...(query.principal ? { principal: query.principal } : {}), ...(query.before ? { before: query.before } : {}) }),
    recordAudit: (entry) => {
      options.audit.record(entry);
    },
    inspect: (limit) => {
      options.flushSnapshot();
      return readInspection(options.db, limit);
    },
    ports,
    onEvent: (listener) => bus.subscribe(listener),
  };
}
