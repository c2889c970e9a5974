import { TunnelManagerError } from '../errors.ts';
import type { ServicePlacement } from './target-selection.ts';
import { findContainer, networkNamespaceOf, sortedBy, type DockerContainer, type Topology } from './topology-model.ts';

/**
 * Where a service runs, from what a caller knows about it:
 * - a host port (the project's allocated port): the running container that publishes it, else a host process;
 * - a container (name or id) and the port the service listens on inside it.
 */
export type ServiceRequest =
  | { hostPort: number; listenAddress?: string | null }
  | { container: string; port: number; hostPortHint?: number | null; listenAddress?: string | null };

export interface ServiceLocation {
  placement: ServicePlacement;
  container: DockerContainer | null;
  evidence: string;
}

export interface LocateServiceOptions {
  /** Old name → new name, from a topology diff, so a route naming a renamed container still resolves. */
  renamed?: ReadonlyMap<string, string>;
}

export function locateService(topology: Topology, request: ServiceRequest, options: LocateServiceOptions = {}): ServiceLocation {
  if ('hostPort' in request) {
    const publishers = sortedBy(
      topology.containers.filter((c) => c.state === 'running' && c.ports.some((p) => p.protocol === 'tcp' && p.hostPort === request.hostPort)),
      (c) => c.name,
    );
    const publisher = publishers[0];
    if (publisher === undefined) {
      return {
        placement: { kind: 'host', port: request.hostPort, listenAddress: request.listenAddress ?? null },
        container: null,
        evidence: `no running container publishes host port ${request.hostPort}, so it is served by a host process`,
      };
    }
    if (publishers.length > 1) throw ambiguousHostPort(request.hostPort, publishers);
    const binding = sortedBy(publisher.ports.filter((p) => p.protocol === 'tcp' && p.hostPort === request.hostPort), (p) => `${p.hostIp ?? ''} ${String(p.containerPort).padStart(5, '0')}`)[0]!;
    return {
      ...containerPlacement(topology, publisher, binding.containerPort, request.hostPort, request.listenAddress ?? null, null),
      evidence: `container "${publisher.name}" publishes host port ${request.hostPort} → ${binding.containerPort}/tcp`,
    };
  }

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
