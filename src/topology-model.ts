/**
 * The Docker topology as Tunnel Manager sees it: plain data, no dockerode types,
 * so target selection, diffing and persistence are pure and testable without an engine.
 */

export interface DockerNetwork {
  id: string;
  name: string;
  /** `bridge`, `overlay`, `macvlan`, `host`, `null`… */
  driver: string;
  /** First IPv4/IPv6 subnet of the network's IPAM config, if any. */
  subnet: string | null;
  internal: boolean;
  labels: Record<string, string>;
}

export interface NetworkMembership {
  networkId: string;
  networkName: string;
  /** DNS aliases of the container on that network (compose service names, short id…). */
  aliases: string[];
  ipAddress: string | null;
}

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** A container port and, when published, where on the host it is bound. */
export interface PortBinding {
  containerPort: number;
  protocol: PortProtocol;
  /** `0.0.0.0`, `::`, `127.0.0.1`, a specific address, or null when only exposed. */
  hostIp: string | null;
  hostPort: number | null;
}

export interface DockerContainer {
  id: string;
  /** Without the leading slash. */
  name: string;
  image: string;
  /** `running`, `exited`, `created`, `paused`, `restarting`, `dead`. */
  state: string;
  /** `default`, `bridge`, `host`, `none`, `container:<id>`, or a network name. */
  networkMode: string | null;
  labels: Record<string, string>;
  /** HostConfig.ExtraHosts as given, e.g. `host.docker.internal:host-gateway`. */
  extraHosts: string[];
  networks: NetworkMembership[];
  ports: PortBinding[];
  /** Entrypoint and command joined with spaces; null when read back from the store (not persisted). */
  command: string | null;
}

export interface Topology {
  networks: DockerNetwork[];
  containers: DockerContainer[];
}

export const EMPTY_TOPOLOGY: Topology = Object.freeze({ networks: [], containers: [] });

/** The network every container joins by default; Docker gives it no name resolution between containers. */
export const DEFAULT_BRIDGE_NETWORK = 'bridge';

/** Networks on which containers can reach each other by name (Docker's embedded DNS). */
export function hasNameResolution(networkName: string): boolean {
  return networkName !== DEFAULT_BRIDGE_NETWORK && networkName !== 'host' && networkName !== 'none';
}

export function findContainer(topology: Topology, nameOrId: string): DockerContainer | undefined {
  const wanted = nameOrId.replace(/^\//, '');
  return (
    topology.containers.find((container) => container.name === wanted) ??
    topology.containers.find((container) => container.id === wanted) ??
    (wanted.length >= 12 ? topology.containers.find((container) => container.id.startsWith(wanted)) : undefined)
  );
}

/** Sorts by a string key with a plain code-unit comparison, so results never depend on locale or input order. */
export function sortedBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  return [...items].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** The container whose network stack a container uses: itself, or the target of `network_mode: container:<x>`. */
export interface NetworkNamespace {
  owner: DockerContainer;
  /** `host`, `none`, or null when it has its own namespace attached to `networks`. */
  special: 'host' | 'none' | null;
  networks: NetworkMembership[];
}

export function networkNamespaceOf(topology: Topology, container: DockerContainer): NetworkNamespace {
  let owner = container;
  for (let hops = 0; hops < 4 && owner.networkMode?.startsWith('container:'); hops += 1) {
    const next = findContainer(topology, owner.networkMode.slice('container:'.length));
    if (next === undefined) break;
    owner = next;
  }
  const special = owner.networkMode === 'host' ? 'host' : owner.networkMode === 'none' ? 'none' : null;
  return { owner, special, networks: special === null ? owner.networks : [] };
}
