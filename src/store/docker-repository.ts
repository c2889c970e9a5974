import type { Database } from 'better-sqlite3';
import { sortedBy, type DockerContainer, type DockerNetwork, type PortProtocol, type Topology } from '../topology-model.ts';
import { jsonStringList, jsonStringRecord } from './json-column.ts';

/**
 * The Docker topology as last seen: docker_networks, docker_containers, container_networks, container_ports.
 * A full sync replaces everything in one transaction; live events upsert or delete single rows.
 * Container commands are not persisted (read back as null).
 */
export class DockerRepository {
  private readonly statements;

  constructor(private readonly db: Database) {
    this.statements = {
      deleteAllNetworks: db.prepare('DELETE FROM docker_networks'),
      deleteAllContainers: db.prepare('DELETE FROM docker_containers'),
      upsertNetwork: db.prepare(
        `INSERT INTO docker_networks (id, name, driver, subnet, internal, labels, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, driver = excluded.driver, subnet = excluded.subnet,
           internal = excluded.internal, labels = excluded.labels, seen_at = excluded.seen_at`,
      ),
      deleteNetwork: db.prepare('DELETE FROM docker_networks WHERE id = ?'),
      upsertContainer: db.prepare(
        `INSERT INTO docker_containers (id, name, image, state, network_mode, labels, extra_hosts, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, image = excluded.image, state = excluded.state,
           network_mode = excluded.network_mode, labels = excluded.labels, extra_hosts = excluded.extra_hosts, seen_at = excluded.seen_at`,
      ),
      deleteContainer: db.prepare('DELETE FROM docker_containers WHERE id = ?'),
      deleteMemberships: db.prepare('DELETE FROM container_networks WHERE container_id = ?'),
      insertMembership: db.prepare(
        'INSERT INTO container_networks (container_id, network_id, network_name, aliases, ip_address) VALUES (?, ?, ?, ?, ?)',
      ),
      deletePorts: db.prepare('DELETE FROM container_ports WHERE container_id = ?'),
      insertPort: db.prepare(
        'INSERT INTO container_ports (container_id, container_port, protocol, host_ip, host_port) VALUES (?, ?, ?, ?, ?)',
      ),
      selectNetworks: db.prepare<[], NetworkRow>('SELECT id, name, driver, subnet, internal, labels FROM docker_networks'),
      selectContainers: db.prepare<[], ContainerRow>('SELECT id, name, image, state, network_mode, labels, extra_hosts FROM docker_containers'),
      selectMemberships: db.prepare<[], MembershipRow>('SELECT container_id, network_id, network_name, aliases, ip_address FROM container_networks'),
      selectPorts: db.prepare<[], PortRow>('SELECT container_id, container_port, protocol, host_ip, host_port FROM container_ports ORDER BY id'),
      selectLastSeen: db.prepare<[], { at: number | null }>('SELECT MAX(seen_at) AS at FROM (SELECT seen_at FROM docker_networks UNION ALL SELECT seen_at FROM docker_containers)'),
    };
  }

  /** Replaces the whole stored topology with `topology`, atomically. */
  replaceAll(topology: Topology, at: number): void {
    this.db.transaction(() => {
      this.statements.deleteAllContainers.run(); // cascades to memberships and ports
      this.statements.deleteAllNetworks.run();
      for (const network of topology.networks) this.writeNetwork(network, at);
      for (const container of topology.containers) this.writeContainer(container, at);
    })();
  }

  upsertNetwork(network: DockerNetwork, at: number): void {
    this.writeNetwork(network, at);
  }

  removeNetwork(id: string): void {
    this.statements.deleteNetwork.run(id);
  }

  upsertContainer(container: DockerContainer, at: number): void {
    this.db.transaction(() => this.writeContainer(container, at))();
  }

  removeContainer(id: string): void {
    this.statements.deleteContainer.run(id);
  }

  /** The stored topology, sorted by name (what the last sync and events left behind). */
  load(): Topology {
    const networks = this.statements.selectNetworks.all().map((row) => ({
      id: row.id,
      name: row.name,
      driver: row.driver,
      subnet: row.subnet,
      internal: row.internal === 1,
      labels: jsonStringRecord(row.labels),
    }));
    const memberships = new Map<string, DockerContainer['networks']>();
    for (const row of this.statements.selectMemberships.all()) {
      const list = memberships.get(row.container_id) ?? [];
      list.push({ networkId: row.network_id, networkName: row.network_name, aliases: jsonStringList(row.aliases), ipAddress: row.ip_address });
      memberships.set(row.container_id, list);
    }
    const ports = new Map<string, DockerContainer['ports']>();
    for (const row of this.statements.selectPorts.all()) {
      const list = ports.get(row.container_id) ?? [];
      list.push({ containerPort: row.container_port, protocol: row.protocol, hostIp: row.host_ip, hostPort: row.host_port });
      ports.set(row.container_id, list);
    }
    const containers = this.statements.selectContainers.all().map((row) => ({
      id: row.id,
      name: row.name,
      image: row.image,
      state: row.state,
      networkMode: row.network_mode,
      labels: jsonStringRecord(row.labels),
      extraHosts: jsonStringList(row.extra_hosts),
      networks: sortedBy(memberships.get(row.id) ?? [], (m) => m.networkName),
      ports: ports.get(row.id) ?? [],
      command: null,
    }));
    return { networks: sortedBy(networks, (n) => `${n.name} ${n.id}`), containers: sortedBy(containers, (c) => `${c.name} ${c.id}`) };
  }

  /** When the stored topology was last confirmed, or null when nothing is stored. */
  lastSeenAt(): number | null {
    return this.statements.selectLastSeen.get()?.at ?? null;
  }

  private writeNetwork(network: DockerNetwork, at: number): void {
    this.statements.upsertNetwork.run(network.id, network.name, network.driver, network.subnet, network.internal ? 1 : 0, JSON.stringify(network.labels), at);
  }

  private writeContainer(container: DockerContainer, at: number): void {
    const s = this.statements;
    s.upsertContainer.run(
      container.id, container.name, container.image, container.state, container.networkMode,
      JSON.stringify(container.labels), JSON.stringify(container.extraHosts), at,
    );
    s.deleteMemberships.run(container.id);
    for (const m of container.networks) s.insertMembership.run(container.id, m.networkId, m.networkName, JSON.stringify(m.aliases), m.ipAddress);
    s.deletePorts.run(container.id);
    for (const p of container.ports) s.insertPort.run(container.id, p.containerPort, p.protocol, p.hostIp, p.hostPort);
  }
}

interface NetworkRow { id: string; name: string; driver: string; subnet: string | null; internal: number; labels: string }
interface ContainerRow { id: string; name: string; image: string; state: string; network_mode: string | null; labels: string; extra_hosts: string }
interface MembershipRow { container_id: string; network_id: string; network_name: string; aliases: string; ip_address: string | null }
interface PortRow { container_id: string; container_port: number; protocol: PortProtocol; host_ip: string | null; host_port: number | null }
