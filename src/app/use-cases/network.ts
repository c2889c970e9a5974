import { locateCloudflared, type CloudflaredLocation } from '../../docker/cloudflared-location.ts';
import { checkConnectivity, type ConnectivityReport } from '../../docker/connectivity-check.ts';
import { detectListenAddress } from '../../docker/listen-address.ts';
import { gatherPortEvidence } from '../../docker/port-evidence.ts';
import { locateService, needsListenEvidence, type ServiceLocation } from '../../docker/service-location.ts';
import { selectTarget, type TargetChosen, type TargetSelection } from '../../docker/target-selection.ts';
import { topologyToMermaid } from '../../docker/topology-diagram.ts';
import type { ConnectivityView, TopologyView } from '../../contract/network.ts';
import { TunnelManagerError } from '../../errors.ts';
import type { Topology } from '../../topology-model.ts';
import type { BackendContext, ManagerBackend } from './context.ts';
import { cloudflaredLocationOptions } from '../config/cloudflared-placement.ts';
import { supervisorChild } from '../actors/supervisor-children.ts';

/** The backend's network part: where cloudflared runs, the target for a port, and whether anything answers there. */

export function whereIsCloudflared(context: BackendContext, topology: Topology): CloudflaredLocation {
  return locateCloudflared(topology, cloudflaredLocationOptions(context.options.config));
}

/**
 * The target for a port, from the live topology and the evidence of who listens on it (docs/docker-targets.md,
 * "The service behind a port"); `reason` says how the service was found, then why that target.
 */
export async function chooseTarget(
  context: BackendContext,
  port: number,
  project: string | null,
): Promise<{ selection: TargetSelection; cloudflared: CloudflaredLocation; found: ServiceLocation }> {
  const { docker } = context.options;
  const topology = context.options.topology.current();
  const cloudflared = whereIsCloudflared(context, topology);
  const placement = cloudflared.placement;
  const evidence = needsListenEvidence(topology, port)
    ? await gatherPortEvidence(docker, topology, port, { exclude: placement.kind === 'container' ? [placement.netnsOwner ?? placement.name] : [] })
    : null;
  // Only listeners cloudflared reaches at this port are candidates; the port's allocation tells an unrelated
  // container (running before the port was allocated) from the project's own.
  const request = { hostPort: port, evidence, project, cloudflared: placement, allocatedAt: context.options.ports.allocationOf(port)?.allocatedAt ?? null };
  let found = locateService(topology, request);
  // A service in a container that publishes the port: read the address it really listens on (a loopback-only one
  // answers nobody outside).
  if (found.placement.kind === 'container' && found.container !== null && docker !== null && !found.placement.listenAddress) {
    const detected = await detectListenAddress(docker, found.container.id, found.placement.port);
    if (detected.kind === 'only') found = locateService(topology, { ...request, listenAddress: detected.address });
  }
  const selection = selectTarget({ cloudflared: placement, service: found.placement });
  const reason = `${found.evidence}; ${selection.reason.charAt(0).toLowerCase()}${selection.reason.slice(1)}`;
  return { selection: { ...selection, reason }, cloudflared, found };
}

/** Does anything answer at the target, seen from where cloudflared runs (the check of tunnel_check_connectivity)? */
export function verify(context: BackendContext, cloudflared: CloudflaredLocation, target: string): Promise<ConnectivityReport> {
  const { config, docker } = context.options;
  return checkConnectivity(docker, {
    cloudflared: cloudflared.placement,
    target,
    ...(config.docker.probeImage ? { helperImage: config.docker.probeImage } : {}),
  });
}

const checkSummary = (report: ConnectivityReport) =>
  `${report.method} check ${report.vantage}: ${report.steps.map((s) => `${s.step} ${s.ok ? 'ok' : 'failed'} (${s.detail})`).join(', ') || report.error}`;

/** How the check before publishing words its answers: for a new route, or for a route being moved. */
export interface TargetCheckWording {
  /** "published" or "switched" (ahead of the service). */
  done: string;
  /** "made" or "moved" (when the route was …). */
  when: string;
  /** "publish" or "switch" (to … before the service is up). */
  verb: string;
  /** What happened to the ledger when refused: "Nothing was created.". */
  outcome: string;
  /** More of the refusal's details (the route being moved). */
  details?: Record<string, unknown>;
}

export const NEW_ROUTE_WORDING: TargetCheckWording = { done: 'published', when: 'made', verb: 'publish', outcome: 'Nothing was created.' };

/** What the check decided: the route's warning (null when the service answered), and whether it goes ahead of the service. */
export interface TargetCheck {
  warning: string | null;
  /** Nothing answered and the caller said to go on: the origin watch tells the owner when it first answers. */
  ahead: boolean;
}

/**
 * Before anything changes: the target must answer from cloudflared's side, or the caller must say it goes ahead of its
 * service (`publishAhead`). Throws TARGET_NOT_ANSWERING with the fix otherwise.
 */
export async function answeringOrAhead(
  context: BackendContext,
  port: number,
  target: TargetChosen,
  cloudflared: CloudflaredLocation,
  publishAhead: boolean,
  wording: TargetCheckWording = NEW_ROUTE_WORDING,
): Promise<TargetCheck> {
  const report = await verify(context, cloudflared, target.target);
  if (report.ok) return { warning: null, ahead: false };
  if (report.steps.length === 0) {
    // The check itself could not run (no helper image, cloudflared's container not inspectable): not evidence
    // that nothing answers. Go on, and say what was not verified.
    return { warning: `not verified: the connectivity check could not run (${report.error}); set docker.probeImage to a local image with busybox, or check with tunnel_check_connectivity later`, ahead: false };
  }
  if (publishAhead) {
    return {
      warning: `${wording.done} ahead of the service: nothing answered at ${target.target} when the route was ${wording.when} (${report.error}); you will get route.service_answering when it first answers`,
      ahead: true,
    };
  }
  throw new TunnelManagerError({
    code: 'TARGET_NOT_ANSWERING',
    message: `Nothing answers at ${target.target} yet, seen from where cloudflared runs (${report.error}); the route would serve 502s. ${wording.outcome}`,
    fix:
      `Start your service on port ${port} (listening on 0.0.0.0, not only 127.0.0.1 inside a container) and retry; check with tunnel_check_connectivity { "targetPort": ${port} }. ` +
      `To ${wording.verb} before the service is up, retry with "publishAhead": true (the route carries a warning until the service answers).`,
    details: { port, target: target.target, reason: target.reason, check: checkSummary(report), ...wording.details },
  });
}

/** tunnel_check_connectivity and tunnel_recommend_config: the target for the port, and whether it answers. */
/** `project`: the port's project as the policy decided it, or null for the meta-supervisor, who may look at any port. */
async function connectivity(context: BackendContext, project: string | null, port: number): Promise<ConnectivityView> {
  const { selection, cloudflared } = await chooseTarget(context, port, project);
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
  const report = await verify(context, cloudflared, selection.target);
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

/** tunnel_get_topology: the networks and containers as last seen, where cloudflared runs, and a diagram. */
function topologyView(context: BackendContext): TopologyView {
  const topology = context.options.topology.current();
  const located = whereIsCloudflared(context, topology);
  const topologyActor: { hasTag?: (tag: string) => boolean; context: { lastError: string | null } } = supervisorChild(context.options.supervisor(), 'topology').getSnapshot();
  const available = topologyActor.hasTag?.('available') ?? false;
  return {
    available,
    reason: available ? null : (topologyActor.context.lastError ?? 'Docker has not been reached yet'),
    cloudflared: { ...located.placement, evidence: located.evidence },
    networks: topology.networks.map((n) => ({ ...n })),
    containers: topology.containers.map((c) => ({ ...c })),
    mermaid: topologyToMermaid(topology, located.container?.name ?? null),
  };
}

export function backendNetwork(context: BackendContext): Pick<ManagerBackend, 'verifyTarget' | 'checkConnectivity' | 'recommendConfig' | 'topology'> {
  const check = (project: string | null, port: number) => connectivity(context, project, port);
  return {
    verifyTarget: (target: string) => verify(context, whereIsCloudflared(context, context.options.topology.current()), target),
    checkConnectivity: check,
    recommendConfig: check,
    // Async as before: a throw (no topology child) rejects rather than throwing synchronously.
    topology: async () => topologyView(context),
  };
}
