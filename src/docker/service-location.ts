import { TunnelManagerError } from '../errors.ts';
import { classifyListeners } from './listen-address.ts';
import type { PortEvidence } from './port-evidence.ts';
import { selectTarget, type CloudflaredPlacement, type ServicePlacement } from './target-selection.ts';
import { findContainer, networkNamespaceOf, sortedBy, type DockerContainer, type Topology } from './topology-model.ts';

/**
 * Where a service runs, from what a caller knows about it:
 * - a host port (the project's allocated port): the running container that publishes it, else a host process;
 * - a container (name or id) and the port the service listens on inside it.
 */
export type ServiceRequest =
  | {
      hostPort: number;
      listenAddress?: string | null;
      /** Who listens on the port (`gatherPortEvidence`); without it, a port no container publishes is a host process's. */
      evidence?: PortEvidence | null;
      /** The project asking: a container labelled for another project is never chosen. */
      project?: string | null;
      /**
       * Where cloudflared runs: a listener is a candidate only when cloudflared reaches it at this port from there
       * (a container listening inside its own network namespace is not on the host's port). Without it every
       * listener is a candidate.
       */
      cloudflared?: CloudflaredPlacement | null;
      /**
       * When the port was allocated to the project that owns it: a container listening on it only inside its own
       * network namespace that was already running then was not started for that project.
       */
      allocatedAt?: number | null;
    }
  | { container: string; port: number; hostPortHint?: number | null; listenAddress?: string | null };

export interface ServiceLocation {
  placement: ServicePlacement;
  container: DockerContainer | null;
  evidence: string;
  /** Whether something listens on the port now: false when the evidence shows nothing, null when not known. */
  listening?: boolean | null;
}

export interface LocateServiceOptions {
  /** Old name → new name, from a topology diff, so a route naming a renamed container still resolves. */
  renamed?: ReadonlyMap<string, string>;
}

/** The label by which a container says which project it belongs to (also read by label routes). */
export const PROJECT_LABEL = 'tunnel-manager.project';

export function locateService(topology: Topology, request: ServiceRequest, options: LocateServiceOptions = {}): ServiceLocation {
  if ('hostPort' in request) return locateByHostPort(topology, request);

  let container = findContainer(topology, request.container);
  let requestedAs: string | null = null;
  const newName = options.renamed?.get(request.container);
  if (container === undefined && newName !== undefined) {
    container = findContainer(topology, newName);
    requestedAs = request.container;
  }
  if (container === undefined) {
    throw new TunnelManagerError({
      code: 'CONTAINER_NOT_FOUND',
      message: `No container named "${request.container}" exists.`,
      fix: `Check the name with \`docker ps -a --format '{{.Names}}'\`, start the service's container, or ask for the route by host port instead.`,
      details: { container: request.container },
    });
  }
  if (container.name !== request.container && !container.id.startsWith(request.container)) requestedAs = request.container;
  return {
    ...containerPlacement(topology, container, request.port, request.hostPortHint ?? null, request.listenAddress ?? null, requestedAs),
    evidence: `container "${container.name}" (${container.state})${requestedAs !== null ? `, formerly "${requestedAs}"` : ''}, port ${request.port} inside it`,
  };
}

type HostPortRequest = Extract<ServiceRequest, { hostPort: number }>;

const publishes = (container: DockerContainer, port: number) => container.ports.some((p) => p.protocol === 'tcp' && p.hostPort === port);

/**
 * Whether who listens on the port can change the answer: not when a running container publishes it (that decides
 * first), so the /proc tables (a walk of the kernel's socket tables, several ms each) are read only when they matter.
 */
export function needsListenEvidence(topology: Topology, hostPort: number): boolean {
  return !topology.containers.some((c) => c.state === 'running' && publishes(c, hostPort));
}

/**
 * The service behind a host port, decided from evidence, strongest first: a running container that publishes the
 * port; a network namespace where something listens on it (a container's, or the host's); a running container that
 * declares `EXPOSE` for it (nothing listens yet). Two candidates at one level are refused as ambiguous, never
 * guessed; a container labelled for another project is never a candidate.
 */
function locateByHostPort(topology: Topology, request: HostPortRequest): ServiceLocation {
  const port = request.hostPort;
  const running = topology.containers.filter((c) => c.state === 'running');
  const published = locateByPublisher(topology, request, running);
  if (published !== null) return published;
  const evidence = request.evidence ?? null;
  if (evidence === null || (evidence.host === null && evidence.containers === null)) {
    return {
      placement: { kind: 'host', port, listenAddress: request.listenAddress ?? null },
      container: null,
      evidence: `no running container publishes host port ${port}, so it is served by a host process`,
      listening: null,
    };
  }
  const listeners = listenersOf(topology, request, evidence);
  return locateReachableListener(request, listeners) ?? locateAttributableListener(request, listeners, evidence) ?? locateByExpose(topology, request, running, listeners);
}

/** The one running container that publishes the port (two are ambiguous), or null when none does. */
function locateByPublisher(topology: Topology, request: HostPortRequest, running: DockerContainer[]): ServiceLocation | null {
  const port = request.hostPort;
  const publishers = ownCandidates(sortedBy(running.filter((c) => publishes(c, port)), (c) => c.name), port, request.project ?? null, 'publishes');
  if (publishers.length > 1) throw ambiguousHostPort(port, publishers);
  const publisher = publishers[0];
  if (publisher === undefined) return null;
  const [binding] = sortedBy(publisher.ports.filter((p) => p.protocol === 'tcp' && p.hostPort === port), (p) => `${p.hostIp ?? ''} ${String(p.containerPort).padStart(5, '0')}`);
  if (binding === undefined) return null;
  return {
    ...containerPlacement(topology, publisher, binding.containerPort, port, request.listenAddress ?? null, null),
    evidence: `container "${publisher.name}" publishes host port ${port} → ${binding.containerPort}/tcp`,
    listening: null,
  };
}

/** Who listens on the port, by the evidence: a host process, then the project's candidate containers by name. */
function listenersOf(topology: Topology, request: HostPortRequest, evidence: PortEvidence): Listener[] {
  const port = request.hostPort;
  const hostAddresses = evidence.host ?? [];
  const found = (evidence.containers ?? []).flatMap((entry) => {
    const container = findContainer(topology, entry.name);
    return container === undefined ? [] : [container];
  });
  const listeningContainers = ownCandidates(sortedBy(found, (c) => c.name), port, request.project ?? null, 'listens on', hostAddresses.length > 0);
  const addressesOf = (name: string) => evidence.containers?.find((entry) => entry.name === name)?.addresses ?? [];
  const host: Listener[] =
    hostAddresses.length === 0
      ? []
      : [
          {
            what: `a host process (${hostAddresses.join(', ')})`,
            container: null,
            location: {
              placement: { kind: 'host', port, listenAddress: request.listenAddress ?? listenAddressOf(hostAddresses) },
              container: null,
              evidence: `a host process listens on ${hostAddresses.join(', ')} port ${port}`,
              listening: true,
            },
          },
        ];
  return [
    ...host,
    ...listeningContainers.map((c) => ({
      what: `container "${c.name}" (${addressesOf(c.name).join(', ')})`,
      container: c,
      location: {
        ...containerPlacement(topology, c, port, port, request.listenAddress ?? listenAddressOf(addressesOf(c.name)), null),
        evidence: `container "${c.name}" listens on ${addressesOf(c.name).join(', ')} port ${port} in its own network namespace`,
        listening: true,
      },
    })),
  ];
}

/** The one listener cloudflared reaches at this port (several: the one labelled for the project), or null for none. */
function locateReachableListener(request: HostPortRequest, listeners: Listener[]): ServiceLocation | null {
  const port = request.hostPort;
  const project = request.project ?? null;
  const cloudflared = request.cloudflared ?? null;
  const reachable = cloudflared === null ? listeners : listeners.filter((l) => reachesAtPort(cloudflared, l.location.placement, port));
  if (reachable.length === 0) return null;
  const unreachable = listeners.filter((l) => !reachable.includes(l));
  const aside = unreachable.length === 0 ? '' : ` (${unreachable.map((l) => `${l.what.replace(/ \(.*\)$/, '')} listens on port ${port} only where cloudflared does not reach it at that port`).join('; ')})`;
  const own = reachable.length > 1 && project !== null ? reachable.filter((l) => l.container?.labels[PROJECT_LABEL] === project) : [];
  const [chosen] = reachable.length === 1 ? reachable : own.length === 1 ? own : [];
  if (chosen === undefined) throw ambiguousListeners(port, reachable.map((l) => l.what));
  const tie = reachable.length > 1 ? `, labelled ${PROJECT_LABEL}=${project} (also listening: ${reachable.filter((l) => l !== chosen).map((l) => l.what).join(', ')})` : '';
  return { ...chosen.location, evidence: `no container publishes host port ${port}; ${chosen.location.evidence}${tie}${aside}` };
}

/**
 * Nothing cloudflared reaches at this port: the refusal names the listener that is the project's service (the
 * change that makes it reachable), never one that was already running before the port was allocated.
 */
function locateAttributableListener(request: HostPortRequest, listeners: Listener[], evidence: PortEvidence): ServiceLocation | null {
  const port = request.hostPort;
  const startedAt = (name: string) => evidence.containers?.find((entry) => entry.name === name)?.startedAt ?? null;
  const attributable = listeners.filter((l) => l.container === null || attributed(l.container, startedAt(l.container.name), request.project ?? null, request.allocatedAt ?? null));
  if (attributable.length > 1) throw ambiguousListeners(port, attributable.map((l) => l.what));
  const chosen = attributable[0];
  return chosen === undefined ? null : { ...chosen.location, evidence: `no container publishes host port ${port}; ${chosen.location.evidence}` };
}

/** Nothing that could be the service listens: a running container that declares `EXPOSE` for the port, else the host. */
function locateByExpose(topology: Topology, request: HostPortRequest, running: DockerContainer[], listeners: Listener[]): ServiceLocation {
  const port = request.hostPort;
  const unrelated =
    listeners.length === 0
      ? ''
      : ` (${listeners.map((l) => l.what.replace(/ \(.*\)$/, '')).join(', ')} listens on port ${port} only inside its own network namespace and was running before the port was allocated: not taken for this port's service)`;
  const exposes = (c: DockerContainer) => c.ports.some((p) => p.protocol === 'tcp' && p.containerPort === port && p.hostPort === null);
  const exposers = ownCandidates(sortedBy(running.filter(exposes), (c) => c.name), port, request.project ?? null, 'exposes');
  if (exposers.length > 1) throw ambiguousListeners(port, exposers.map((c) => `container "${c.name}" (EXPOSE ${port}, nothing listening yet)`));
  const exposer = exposers[0];
  if (exposer !== undefined) {
    return {
      ...containerPlacement(topology, exposer, port, port, request.listenAddress ?? null, null),
      evidence: `nothing listens on port ${port} yet${unrelated}; container "${exposer.name}" declares EXPOSE ${port}`,
      listening: false,
    };
  }
  return {
    placement: { kind: 'host', port, listenAddress: request.listenAddress ?? null },
    container: null,
    evidence: unrelated === ''
      ? `nothing listens on port ${port} on the host or in any container, and no container publishes or exposes it`
      : `nothing that could be this port's service listens on port ${port}${unrelated}, and no container publishes or exposes it`,
    listening: false,
  };
}

/** A process listening on the port, as a candidate for the service behind it. */
interface Listener {
  what: string;
  container: DockerContainer | null;
  location: ServiceLocation;
}

/**
 * Whether cloudflared, from where it runs, reaches this service at the port asked for: by a shared network or the
 * same network namespace (the container's port), or at that very port of the host. A container that listens on the
 * port only inside its own network namespace is not on the host's port.
 */
function reachesAtPort(cloudflared: CloudflaredPlacement, placement: ServicePlacement, port: number): boolean {
  const selection = selectTarget({ cloudflared, service: placement });
  if (!selection.ok) return false;
  return [selection, ...selection.alternatives].some(
    (candidate) => candidate.via === 'shared-network' || candidate.via === 'same-network-namespace' || new URL(candidate.target).port === String(port),
  );
}

/**
 * Whether a container that listens on the port where cloudflared cannot reach it is the project's service, to be
 * named in the refusal with the change that makes it reachable: labelled for the project, or started after the port
 * was allocated (one already running then was not started for it). When either time is unknown, it is.
 */
function attributed(container: DockerContainer, startedAt: number | null, project: string | null, allocatedAt: number | null): boolean {
  if (project !== null && container.labels[PROJECT_LABEL] === project) return true;
  return startedAt === null || allocatedAt === null || startedAt >= allocatedAt;
}

/** 0.0.0.0 when the namespace listens on every address, else the one address it is bound to (loopback first). */
function listenAddressOf(addresses: readonly string[]): string | null {
  const detected = classifyListeners(addresses, 'here');
  return detected.kind === 'all' ? '0.0.0.0' : detected.kind === 'only' ? detected.address : null;
}

/**
 * The candidates a project may be routed to: a container labelled `tunnel-manager.project` for another project is
 * never one. When every candidate belongs to another project (and no other evidence names a service), the port is
 * that project's service: refused by name.
 */
function ownCandidates(candidates: DockerContainer[], port: number, project: string | null, how: string, otherEvidence = false): DockerContainer[] {
  if (project === null) return candidates;
  const foreignOwner = (c: DockerContainer): string | null => {
    const owner = c.labels[PROJECT_LABEL];
    return owner !== undefined && owner !== '' && owner !== project ? owner : null;
  };
  const own = candidates.filter((c) => foreignOwner(c) === null);
  const other = candidates.find((c) => foreignOwner(c) !== null);
  const owner = other === undefined ? null : foreignOwner(other);
  if (own.length === 0 && other !== undefined && owner !== null && !otherEvidence) {
    throw new TunnelManagerError({
      code: 'TARGET_OTHER_PROJECT',
      message: `Port ${port} is served by container "${other.name}", which ${how} it and is labelled ${PROJECT_LABEL}=${owner}: a route of ${project} never reaches another project's service.`,
      fix: `If "${other.name}" is ${project}'s, recreate it with --label ${PROJECT_LABEL}=${project}; otherwise run your service on a port of your own and ask for that one.`,
      details: { hostPort: port, container: other.name, labelledProject: owner, project },
    });
  }
  return own;
}

/** Two listeners (or declared ports) fit one port: the port alone does not say which service is meant. */
function ambiguousListeners(port: number, candidates: string[]): TunnelManagerError {
  return new TunnelManagerError({
    code: 'TARGET_AMBIGUOUS',
    message: `Nothing publishes host port ${port}, and ${candidates.length} services could be the one behind it: ${candidates.join(', ')}.`,
    fix:
      `Keep port ${port} for one service: stop the others or move them to another port (\`docker stop NAME\`), or publish the one you mean ` +
      `(recreate it with -p 127.0.0.1:${port}:${port}), then retry.`,
    details: { hostPort: port, candidates },
  });
}

function containerPlacement(
  topology: Topology,
  container: DockerContainer,
  port: number,
  hostPortHint: number | null,
  listenAddress: string | null,
  requestedAs: string | null,
): Pick<ServiceLocation, 'placement' | 'container'> {
  const netns = networkNamespaceOf(topology, container);
  return {
    container,
    placement: {
      kind: 'container',
      // Reached by the name of the container that owns the network namespace (`network_mode: container:<x>`).
      name: netns.owner.name,
      state: container.state === 'running' && netns.owner.state !== 'running' ? netns.owner.state : container.state,
      networkMode: netns.special ?? netns.owner.networkMode,
      networks: netns.networks.map((m) => m.networkName),
      ports: netns.owner.ports,
      port,
      listenAddress,
      requestedAs,
      netnsOwner: netns.owner.name,
      hostPortHint,
    },
  };
}

/**
 * Two running containers can publish one host port on different host addresses (127.0.0.1:P and
 * 10.0.0.1:P). A route asked for by port alone could then reach either service: refuse rather than guess.
 */
function ambiguousHostPort(hostPort: number, publishers: readonly DockerContainer[]): TunnelManagerError {
  const bindings = publishers.map((c) => ({
    container: c.name,
    published: c.ports.filter((p) => p.protocol === 'tcp' && p.hostPort === hostPort).map((p) => `${p.hostIp || '0.0.0.0'}:${hostPort}->${p.containerPort}/tcp`).sort(),
  }));
  return new TunnelManagerError({
    code: 'TARGET_AMBIGUOUS',
    message:
      `Host port ${hostPort} is published by ${publishers.length} running containers, so the port alone does not say which service to route to: ` +
      bindings.map((b) => `"${b.container}" (${b.published.join(', ')})`).join(', ') + '.',
    fix:
      `Keep host port ${hostPort} for one container only: recreate the others with a port of their own ` +
      `(\`docker port NAME\` shows what each publishes), or stop the ones that should not serve it (\`docker stop ${publishers.slice(1).map((c) => c.name).join(' ')}\`), then retry.`,
    details: { hostPort, publishers: bindings },
  });
}
