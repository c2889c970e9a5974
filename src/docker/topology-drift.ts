import { toErrorShape } from '../errors.ts';
import { locateCloudflared, type CloudflaredLocation, type LocateCloudflaredOptions } from './cloudflared-location.ts';
import { locateService, type ServiceLocation, type ServiceRequest } from './service-location.ts';
import { selectTarget, type TargetSelection } from './target-selection.ts';
import { diffTopology, renamesIn } from './topology-diff.ts';
import { findContainer, sortedBy, type DockerContainer, type Topology } from './topology-model.ts';

/**
 * Drift: a topology change that breaks the target of an active route (its container moved network,
 * stopped publishing the port, was stopped, renamed or removed). For each broken route: why, the
 * new best target (or the refusal that says what to change), and an event for the route's owner.
 * Re-targeting is the ingress actor's job; this only proposes.
 *
 * A route drifts when its target worked before the change and does not after. Routes that were
 * already broken, or whose target is still one of the working ones, are left alone (no churn).
 */

export interface RouteTarget {
  hostname: string;
  project: string;
  /** The ingress service now in config.yml, e.g. `http://web:80` or `http://localhost:3100`. */
  service: string;
  /** The host port the project asked for, when known. */
  targetPort?: number | null;
  preferredNetwork?: string | null;
}

export type DriftCause =
  | 'container-gone'
  | 'container-renamed'
  | 'container-stopped'
  | 'port-unpublished'
  | 'network-changed'
  | 'cloudflared-moved';

export interface DriftFinding {
  hostname: string;
  project: string;
  cause: DriftCause;
  previousTarget: string;
  /** The new best target, or a refusal with recommendations; null when there is nothing left to target. */
  proposal: TargetSelection | null;
  explanation: string;
  /** Ready for EventsRepository.append (add `ts`). */
  event: { kind: 'route.target_drift'; project: string; data: Record<string, unknown> };
}

export interface DriftInput {
  routes: readonly RouteTarget[];
  before: Topology;
  after: Topology;
  cloudflared?: LocateCloudflaredOptions;
}

export function detectTargetDrift(input: DriftInput): DriftFinding[] {
  const renamed = renamesIn(diffTopology(input.before, input.after));
  const cfBefore = tryLocateCloudflared(input.before, input.cloudflared);
  const cfAfter = tryLocateCloudflared(input.after, input.cloudflared);
  if (cfBefore === null) return [];
  const gatewayNames = [...gatewayNamesOf(cfBefore), ...gatewayNamesOf(cfAfter)];
  return sortedBy(input.routes, (r) => r.hostname).flatMap((route) => {
    const finding = driftOf({ input, renamed, cfBefore, cfAfter }, route, gatewayNames);
    return finding === null ? [] : [finding];
  });
}

interface DriftContext {
  input: DriftInput;
  renamed: ReadonlyMap<string, string>;
  cfBefore: CloudflaredLocation;
  cfAfter: CloudflaredLocation | null;
}

type Evaluation = { location: ServiceLocation; selection: TargetSelection };

function gatewayNamesOf(cloudflared: CloudflaredLocation | null): string[] {
  return cloudflared?.placement.kind === 'container' ? cloudflared.placement.hostGatewayNames : [];
}

/** Whether the route's target worked before the change and not after, and why; null when it did not drift. */
function driftOf(context: DriftContext, route: RouteTarget, gatewayNames: readonly string[]): DriftFinding | null {
  const { input, renamed, cfBefore, cfAfter } = context;
  const request = requestOf(route, gatewayNames);
  if (request === null) return null;
  const was = evaluate(input.before, request, route, cfBefore);
  if (was === null || !worksWith(was.selection, route.service)) return null;
  if (cfAfter === null) return findingFor(route, 'cloudflared-moved', null, `The cloudflared container can no longer be found, so ${route.service} cannot be reached from it.`);
  let requestAfter = request;
  if ('container' in request && findContainer(input.after, request.container) === undefined) {
    const newName = renamed.get(request.container);
    if (newName === undefined) {
      return findingFor(route, 'container-gone', null, `Container "${request.container}" behind ${route.hostname} was removed; nothing serves ${route.service} any more.`);
    }
    requestAfter = { ...request, container: newName };
  }
  const now = evaluate(input.after, requestAfter, route, cfAfter);
  if (now === null) return null;
  const wasContainer = was.location.container;
  if (wasContainer !== null && now.location.container?.id !== wasContainer.id) return publisherChanged(input.after, route, request, wasContainer, now);
  if (worksWith(now.selection, route.service)) return null;
  return whyBroken(route, wasContainer, now, cfBefore, cfAfter);
}

/** The host port used to be published by a container that no longer does: gone, stopped, or it unpublished the port. */
function publisherChanged(after: Topology, route: RouteTarget, request: ServiceRequest, wasContainer: DockerContainer, now: Evaluation): DriftFinding {
  const current = after.containers.find((c) => c.id === wasContainer.id);
  const hostPort = 'hostPort' in request ? request.hostPort : '?';
  if (current === undefined || isBeingRemoved(current.state)) {
    // Gone (or going): nothing will serve that port again by itself, so no new target is proposed (the host port
    // now looks like "a host process" only because nothing publishes it).
    return findingFor(route, 'container-gone', null, `Container "${wasContainer.name}", which published host port ${hostPort} for ${route.hostname}, ${current === undefined ? 'was removed' : 'is being removed'}; nothing serves ${route.service} any more.`);
  }
  if (current.state !== 'running') {
    // Stopped: the route's target is right again once it runs; proposing another would be wrong.
    return findingFor(route, 'container-stopped', null, `Container "${current.name}", which published the port behind ${route.hostname}, is ${current.state}; start it with \`docker start ${current.name}\`.`);
  }
  const nowContainer = now.location.container;
  return findingFor(route, 'port-unpublished', now.selection, `Container "${current.name}" no longer publishes host port ${hostPort}; ${nowContainer === null ? 'no container publishes it now, so only a host process could answer' : `container "${nowContainer.name}" publishes it now`}.`);
}

/** The same service no longer works with the route's target: renamed, going, stopped, cloudflared moved, or networks changed. */
function whyBroken(route: RouteTarget, wasContainer: DockerContainer | null, now: Evaluation, cfBefore: CloudflaredLocation, cfAfter: CloudflaredLocation): DriftFinding {
  const nowContainer = now.location.container;
  if (nowContainer !== null && wasContainer !== null && nowContainer.name !== wasContainer.name) {
    return findingFor(route, 'container-renamed', now.selection, `Container "${wasContainer.name}" was renamed to "${nowContainer.name}"; ${route.service} no longer resolves.`);
  }
  if (nowContainer !== null && isBeingRemoved(nowContainer.state)) {
    return findingFor(route, 'container-gone', null, `Container "${nowContainer.name}" behind ${route.hostname} is being removed; nothing serves ${route.service} any more.`);
  }
  if (nowContainer !== null && nowContainer.state !== 'running') {
    return findingFor(route, 'container-stopped', now.selection, `Container "${nowContainer.name}" behind ${route.hostname} is ${nowContainer.state}.`);
  }
  if (JSON.stringify(cfBefore.placement) !== JSON.stringify(cfAfter.placement)) {
    return findingFor(route, 'cloudflared-moved', now.selection, `cloudflared's networks changed (${cfAfter.evidence}); ${route.service} is no longer reachable from it.`);
  }
  return findingFor(route, 'network-changed', now.selection, `The networks or published ports of ${nowContainer === null ? 'the service' : `container "${nowContainer.name}"`} changed; ${route.service} is no longer reachable from cloudflared.`);
}

function findingFor(route: RouteTarget, cause: DriftCause, proposal: TargetSelection | null, explanation: string): DriftFinding {
  return {
    hostname: route.hostname,
    project: route.project,
    cause,
    previousTarget: route.service,
    proposal,
    explanation,
    event: {
      kind: 'route.target_drift',
      project: route.project,
      data: {
        hostname: route.hostname,
        cause,
        previousTarget: route.service,
        proposedTarget: proposal?.ok ? proposal.target : null,
        reason: proposal === null ? explanation : proposal.reason,
        explanation,
        recommendations: proposal !== null && !proposal.ok ? proposal.recommendations : [],
      },
    },
  };
}

/** Docker's states of a container on its way out (`docker rm -f` passes through them before the destroy event). */
function isBeingRemoved(state: string): boolean {
  return state === 'removing' || state === 'dead';
}

/** How a route's ingress service URL names its service. */
export function requestOf(route: RouteTarget, hostGatewayNames: readonly string[] = []): ServiceRequest | null {
  let url: URL;
  try {
    url = new URL(route.service);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const isHostAddress = host === 'localhost' || host === 'host.docker.internal' || hostGatewayNames.includes(host) || /^[\d.]+$/.test(host) || host.includes(':');
  if (isHostAddress) return { hostPort: port };
  return { container: host, port, hostPortHint: route.targetPort ?? null };
}

function evaluate(topology: Topology, request: ServiceRequest, route: RouteTarget, cloudflared: CloudflaredLocation): Evaluation | null {
  let location: ServiceLocation;
  try {
    location = locateService(topology, request);
  } catch {
    return null;
  }
  return {
    location,
    selection: selectTarget({ cloudflared: cloudflared.placement, service: location.placement, preferredNetwork: route.preferredNetwork ?? null }),
  };
}

function worksWith(selection: TargetSelection, service: string): boolean {
  if (!selection.ok) return false;
  const normalize = (s: string) => s.replace(/\/+$/, '');
  return [selection.target, ...selection.alternatives.map((a) => a.target)].some((t) => normalize(t) === normalize(service));
}

function tryLocateCloudflared(topology: Topology, options: LocateCloudflaredOptions | undefined): CloudflaredLocation | null {
  try {
    return locateCloudflared(topology, options);
  } catch (error) {
    if (toErrorShape(error).code === 'CONTAINER_NOT_FOUND') return null;
    throw error;
  }
}
