import { toErrorShape } from '../errors.ts';
import { locateCloudflared, type CloudflaredLocation, type LocateCloudflaredOptions } from './cloudflared-location.ts';
import { locateService, type ServiceLocation, type ServiceRequest } from './service-location.ts';
import { selectTarget, type TargetSelection } from './target-selection.ts';
import { diffTopology, renamesIn } from './topology-diff.ts';
import { findContainer, sortedBy, type Topology } from './topology-model.ts';

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
  const findings: DriftFinding[] = [];
  for (const route of sortedBy(input.routes, (r) => r.hostname)) {
    const request = requestOf(route, [...(cfBefore?.placement.kind === 'container' ? cfBefore.placement.hostGatewayNames : []), ...(cfAfter?.placement.kind === 'container' ? cfAfter.placement.hostGatewayNames : [])]);
    if (request === null || cfBefore === null) continue;
    const was = evaluate(input.before, request, route, cfBefore);
    if (was === null || !worksWith(was.selection, route.service)) continue;

    const finding = (cause: DriftCause, proposal: TargetSelection | null, explanation: string): DriftFinding => ({
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
    });

    if (cfAfter === null) {
      findings.push(finding('cloudflared-moved', null, `The cloudflared container can no longer be found, so ${route.service} cannot be reached from it.`));
      continue;
    }

    const wasContainer = was.location.container;
    let requestAfter = request;
    if ('container' in request && findContainer(input.after, request.container) === undefined) {
      const newName = renamed.get(request.container);
      if (newName === undefined) {
        findings.push(finding('container-gone', null, `Container "${request.container}" behind ${route.hostname} was removed; nothing serves ${route.service} any more.`));
        continue;
      }
      requestAfter = { ...request, container: newName };
    }
    const now = evaluate(input.after, requestAfter, route, cfAfter);
    if (now === null) continue;
    const nowContainer = now.location.container;

    if (wasContainer !== null && nowContainer?.id !== wasContainer.id) {
      // The host port used to be published by a container that no longer does.
      const current = input.after.containers.find((c) => c.id === wasContainer.id);
      if (current === undefined || isBeingRemoved(current.state)) {
        // Gone (or going): nothing will serve that port again by itself, so no new target is proposed (the host port
        // now looks like "a host process" only because nothing publishes it).
        findings.push(finding('container-gone', null, `Container "${wasContainer.name}", which published host port ${'hostPort' in request ? request.hostPort : '?'} for ${route.hostname}, ${current === undefined ? 'was removed' : 'is being removed'}; nothing serves ${route.service} any more.`));
      } else if (current.state !== 'running') {
        // Stopped: the route's target is right again once it runs; proposing another would be wrong.
        findings.push(finding('container-stopped', null, `Container "${current.name}", which published the port behind ${route.hostname}, is ${current.state}; start it with \`docker start ${current.name}\`.`));
      } else {
        findings.push(finding('port-unpublished', now.selection, `Container "${current.name}" no longer publishes host port ${'hostPort' in request ? request.hostPort : '?'}; ${nowContainer === null ? 'no container publishes it now, so only a host process could answer' : `container "${nowContainer.name}" publishes it now`}.`));
      }
      continue;
    }
    if (worksWith(now.selection, route.service)) continue;

    if (nowContainer !== null && wasContainer !== null && nowContainer.name !== wasContainer.name) {
      findings.push(finding('container-renamed', now.selection, `Container "${wasContainer.name}" was renamed to "${nowContainer.name}"; ${route.service} no longer resolves.`));
    } else if (nowContainer !== null && isBeingRemoved(nowContainer.state)) {
      findings.push(finding('container-gone', null, `Container "${nowContainer.name}" behind ${route.hostname} is being removed; nothing serves ${route.service} any more.`));
    } else if (nowContainer !== null && nowContainer.state !== 'running') {
      findings.push(finding('container-stopped', now.selection, `Container "${nowContainer.name}" behind ${route.hostname} is ${nowContainer.state}.`));
    } else if (JSON.stringify(cfBefore.placement) !== JSON.stringify(cfAfter.placement)) {
      findings.push(finding('cloudflared-moved', now.selection, `cloudflared's networks changed (${cfAfter.evidence}); ${route.service} is no longer reachable from it.`));
    } else {
      findings.push(finding('network-changed', now.selection, `The networks or published ports of ${nowContainer === null ? 'the service' : `container "${nowContainer.name}"`} changed; ${route.service} is no longer reachable from cloudflared.`));
    }
  }
  return findings;
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

function evaluate(topology: Topology, request: ServiceRequest, route: RouteTarget, cloudflared: CloudflaredLocation): { location: ServiceLocation; selection: TargetSelection } | null {
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
