import type Dockerode from 'dockerode';
import { z } from 'zod';
import { TunnelManagerError } from '../errors.ts';
import { statusCodeOf } from '../thrown.ts';
import { sortedBy, type DockerContainer, type DockerNetwork, type NetworkMembership, type PortBinding, type PortProtocol, type Topology } from './topology-model.ts';

/**
 * Reads the topology from the Docker engine: every network, every container (running or not)
 * with its memberships, port bindings, network mode and extra hosts. Results are sorted by name
 * so two reads of an unchanged engine are equal.
 */

const INSPECT_CONCURRENCY = 8;

export async function discoverTopology(docker: Dockerode): Promise<Topology> {
  try {
    const [networkList, containerList] = await Promise.all([docker.listNetworks(), docker.listContainers({ all: true })]);
    const networks = networkList.map(networkFromInspect);
    const containers: DockerContainer[] = [];
    await forEachLimited(containerList.map((c) => c.Id), INSPECT_CONCURRENCY, async (id) => {
      const container = await inspectContainer(docker, id);
      if (container !== null) containers.push(container);
    });
    return { networks: sortedBy(networks, (n) => `${n.name} ${n.id}`), containers: sortedBy(containers, (c) => `${c.name} ${c.id}`) };
  } catch (error) {
    throw dockerUnavailable(error);
  }
}

/** One container as it is now, or null when it no longer exists. */
export async function inspectContainer(docker: Dockerode, id: string): Promise<DockerContainer | null> {
  try {
    return containerFromInspect(await docker.getContainer(id).inspect());
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** One network as it is now, or null when it no longer exists. */
export async function inspectNetwork(docker: Dockerode, id: string): Promise<DockerNetwork | null> {
  try {
    return networkFromInspect(await docker.getNetwork(id).inspect());
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

export function networkFromInspect(info: Dockerode.NetworkInspectInfo): DockerNetwork {
  const config = info.IPAM?.Config ?? [];
  const subnet = config.map((c) => c.Subnet).find((s): s is string => typeof s === 'string' && s !== '') ?? null;
  return {
    id: info.Id,
    name: info.Name,
    driver: info.Driver,
    subnet,
    internal: info.Internal === true,
    labels: { ...(info.Labels ?? {}) },
  };
}

export function containerFromInspect(info: Dockerode.ContainerInspectInfo): DockerContainer {
  const command = [...toArray(info.Config?.Entrypoint), ...toArray(info.Config?.Cmd)].join(' ');
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    image: info.Config?.Image ?? info.Image,
    state: info.State?.Status ?? 'unknown',
    networkMode: info.HostConfig?.NetworkMode ?? null,
    labels: { ...(info.Config?.Labels ?? {}) },
    extraHosts: [...(info.HostConfig?.ExtraHosts ?? [])],
    networks: membershipsFromInspect(info),
    ports: portsFromInspect(info),
    command: command === '' ? null : command,
  };
}

function membershipsFromInspect(info: Dockerode.ContainerInspectInfo): NetworkMembership[] {
  const networks = Object.entries(info.NetworkSettings?.Networks ?? {}).map(([networkName, endpoint]) => ({
    networkId: endpoint.NetworkID || networkName,
    networkName,
    aliases: Array.isArray(endpoint.Aliases) ? sortedBy(endpoint.Aliases.filter((a): a is string => typeof a === 'string'), (a) => a) : [],
    ipAddress: endpoint.IPAddress ? endpoint.IPAddress : null,
  }));
  return sortedBy(networks, (m) => m.networkName);
}

/** `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null}`, as the Engine writes port maps. */
const PortMapSchema = z.record(z.array(z.object({ HostIp: z.string().optional(), HostPort: z.string().optional() })).nullable().optional());

type PortMap = z.infer<typeof PortMapSchema>;

function portMapOf(value: unknown): PortMap | undefined {
  if (value === undefined || value === null) return undefined;
  const parsed = PortMapSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

function portsFromInspect(info: Dockerode.ContainerInspectInfo): PortBinding[] {
  // A running container reports the ports actually bound (random host ports resolved);
  // a stopped one only has its configuration.
  const bound = info.State?.Running === true ? portMapOf(info.NetworkSettings?.Ports) : undefined;
  const configured = portMapOf(info.HostConfig?.PortBindings);
  const exposed = Object.keys(info.Config?.ExposedPorts ?? {});
  return portBindings(bound ?? configured ?? {}, exposed);
}

const PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp'];

function protocolOf(text: string | undefined): PortProtocol | undefined {
  return PROTOCOLS.find((protocol) => protocol === (text ?? 'tcp'));
}

function portBindings(map: PortMap, exposed: string[]): PortBinding[] {
  const bindings: PortBinding[] = [];
  const keys = new Set([...Object.keys(map), ...exposed]);
  for (const key of keys) {
    const [portText, protocolText] = key.split('/');
    const containerPort = Number(portText);
    const protocol = protocolOf(protocolText);
    if (!Number.isInteger(containerPort) || protocol === undefined) continue;
    const hosts = map[key] ?? [];
    if (hosts.length === 0) {
      bindings.push({ containerPort, protocol, hostIp: null, hostPort: null });
      continue;
    }
    for (const host of hosts) {
      const hostPort = host.HostPort ? Number(host.HostPort) : null;
      bindings.push({ containerPort, protocol, hostIp: host.HostIp ? host.HostIp : '0.0.0.0', hostPort: Number.isInteger(hostPort) ? hostPort : null });
    }
  }
  return sortedBy(bindings, (b) => `${String(b.containerPort).padStart(5, '0')}/${b.protocol} ${String(b.hostPort ?? '').padStart(5, '0')} ${b.hostIp ?? ''}`);
}

function toArray(value: string | string[] | null | undefined): string[] {
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export function isNotFound(error: unknown): boolean {
  return statusCodeOf(error) === 404;
}

export function dockerUnavailable(error: unknown): TunnelManagerError {
  if (error instanceof TunnelManagerError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new TunnelManagerError({
    code: 'DOCKER_UNAVAILABLE',
    message: `The Docker engine did not answer: ${message}`,
    fix: 'Check that dockerd runs (`systemctl status docker` or `docker info`) and that tunnel-manager can read the socket set in docker.socketPath (its user needs to be in the `docker` group). Targets for host services keep working meanwhile.',
    details: { cause: message },
    cause: error,
  });
}

async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  // One iterator shared by every worker: each takes the next item when it is free.
  const queue = items.values();
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (const item of queue) await work(item);
  });
  await Promise.all(workers);
}
