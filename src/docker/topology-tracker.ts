import type Dockerode from 'dockerode';
import type { DockerRepository } from '../store/docker-repository.ts';
import { discoverTopology, inspectContainer, inspectNetwork } from './topology-discovery.ts';
import { diffTopology, type TopologyDiff } from './topology-diff.ts';
import type { TopologyChangeHint } from './topology-events.ts';
import { sortedBy, type Topology } from './topology-model.ts';

/** A topology change: what it was, what it is, and the diff between them. */
export interface TopologyChangeSet {
  before: Topology;
  after: Topology;
  diff: TopologyDiff;
}

/**
 * Holds the current topology, keeps it up to date from full syncs and event hints,
 * and mirrors it into the store. Starts from what the store remembers, so targets can
 * be explained before Docker answers. Not re-entrant: the topology actor runs one update at a time.
 */
export class TopologyTracker {
  private topology: Topology;
  private lastSyncStartedAt: number | null = null;

  constructor(
    private readonly docker: Dockerode,
    private readonly repository: DockerRepository | null = null,
    private readonly clock: () => number = Date.now,
  ) {
    this.topology = repository?.load() ?? { networks: [], containers: [] };
  }

  current(): Topology {
    return this.topology;
  }

  /** When the last full sync began: events since then may not be in it (the event watch replays from here). */
  syncStartedAt(): number | null {
    return this.lastSyncStartedAt;
  }

  async resync(): Promise<TopologyChangeSet> {
    const startedAt = this.clock();
    const after = await discoverTopology(this.docker);
    this.lastSyncStartedAt = startedAt;
    this.repository?.replaceAll(after, this.clock());
    return this.commit(after);
  }

  /** Re-inspects what the hints point at and folds the answers in. */
  async applyChanges(hints: readonly TopologyChangeHint[]): Promise<TopologyChangeSet> {
    const containerIds = [...new Set(hints.filter((h) => h.kind === 'container').map((h) => h.id))];
    const networkIds = [...new Set(hints.filter((h) => h.kind === 'network').map((h) => h.id))];
    const containers = await Promise.all(containerIds.map(async (id) => [id, await inspectContainer(this.docker, id)] as const));
    const networks = await Promise.all(networkIds.map(async (id) => [id, await inspectNetwork(this.docker, id)] as const));

    const at = this.clock();
    const nextContainers = new Map(this.topology.containers.map((c) => [c.id, c]));
    for (const [id, container] of containers) {
      if (container === null) {
        nextContainers.delete(id);
        this.repository?.removeContainer(id);
      } else {
        nextContainers.set(container.id, container);
        this.repository?.upsertContainer(container, at);
      }
    }
    const nextNetworks = new Map(this.topology.networks.map((n) => [n.id, n]));
    for (const [id, network] of networks) {
      if (network === null) {
        nextNetworks.delete(id);
        this.repository?.removeNetwork(id);
      } else {
        nextNetworks.set(network.id, network);
        this.repository?.upsertNetwork(network, at);
      }
    }
    return this.commit({
      networks: sortedBy([...nextNetworks.values()], (n) => `${n.name} ${n.id}`),
      containers: sortedBy([...nextContainers.values()], (c) => `${c.name} ${c.id}`),
    });
  }

  private commit(after: Topology): TopologyChangeSet {
    const before = this.topology;
    this.topology = after;
    return { before, after, diff: diffTopology(before, after) };
  }
}
