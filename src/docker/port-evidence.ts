import type Dockerode from 'dockerode';
import { listenersOf } from './listen-address.ts';
import { sortedBy, type Topology } from './topology-model.ts';

/**
 * Who listens on a port, read from the kernel the way an operator would look (`ss -ltn` on the host and inside each
 * container's network namespace), for `locateService` to decide from evidence rather than from what is published.
 *
 * The manager runs on the host: `/proc/self/net/tcp{,6}` is the host's table, and `/proc/<pid>/net/tcp{,6}` of a
 * container's main process is that container's network namespace. Nothing runs inside any container.
 */
export interface PortEvidence {
  /** Addresses a process of the host's network namespace listens on for the port; null when it could not be read. */
  host: string[] | null;
  /**
   * Containers (by the name of the container owning the network namespace) whose namespace listens on the port, with
   * the addresses; null when no container's namespace could be read (for example the manager itself in a container
   * with a PID namespace of its own).
   */
  containers: ContainerListener[] | null;
}

/** A container whose network namespace listens on the port. */
export interface ContainerListener {
  name: string;
  addresses: string[];
  /** When the container (last) started, ms since the epoch; absent when Docker did not say. */
  startedAt?: number | null;
}

export interface GatherOptions {
  /** Network-namespace owners not to look into (the cloudflared container: its own sockets are not a service). */
  exclude?: readonly string[];
  /** Reads a /proc file; injectable for tests of the parsing, the real file otherwise. */
  read?: (path: string) => Promise<string>;
}

export async function gatherPortEvidence(docker: Dockerode | null, topology: Topology, port: number, options: GatherOptions = {}): Promise<PortEvidence> {
  const read = options.read;
  const host = await listenersOf('self', port, read);
  if (docker === null) return { host, containers: null };
  const exclude = new Set(options.exclude ?? []);
  // One look per network namespace: containers with `network_mode: host` share the host's (already read), and
  // `container:<x>` ones share their owner's.
  const owners = sortedBy(
    topology.containers.filter((c) => c.state === 'running' && c.networkMode !== 'host' && !(c.networkMode ?? '').startsWith('container:') && !exclude.has(c.name)),
    (c) => c.name,
  );
  const found = await Promise.all(
    owners.map(async (container) => {
      let pid = 0;
      let startedAt: number | null = null;
      try {
        const state = (await docker.getContainer(container.id).inspect()).State;
        pid = state?.Pid ?? 0;
        const started = Date.parse(state?.StartedAt ?? '');
        startedAt = Number.isNaN(started) ? null : started;
      } catch {
        return null; // gone since the topology was read
      }
      if (!pid) return null;
      const addresses = await listenersOf(pid, port, read);
      return addresses === null ? null : { name: container.name, addresses, startedAt };
    }),
  );
  const readable = found.filter((entry): entry is ContainerListener & { startedAt: number | null } => entry !== null);
  if (owners.length > 0 && readable.length === 0) return { host, containers: null };
  return { host, containers: readable.filter((entry) => entry.addresses.length > 0) };
}
