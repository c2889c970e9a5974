import { TunnelManagerError } from '../errors.ts';
import type { PortAllocation, PortsRepository } from '../store/ports-repository.ts';

export interface ProjectRange {
  name: string;
  ports: { from: number; to: number };
}

/**
 * Port ranges per project (from the configuration) and the allocations within them.
 * A route may only target a port allocated to the project that asks for it.
 */
export class PortManager {
  private readonly ranges: Map<string, { from: number; to: number }>;
  /** The host ports something already listens on or publishes: the next free port is never one of them. */
  private inUse: () => ReadonlySet<number> = () => new Set();

  constructor(
    private readonly repository: PortsRepository,
    projects: ProjectRange[],
    private readonly now: () => number = Date.now,
  ) {
    this.ranges = new Map(projects.map((project) => [project.name, project.ports]));
  }

  rangeOf(project: string): { from: number; to: number } {
    const range = this.ranges.get(project);
    if (!range) {
      throw new TunnelManagerError({
        code: 'FORBIDDEN',
        message: `The project ${project} has no port range.`,
        fix: 'Add the project with a `ports: FROM-TO` range to the configuration and restart the service.',
        details: { project },
      });
    }
    return range;
  }

  /**
   * What the host already uses (see src/docker/ports-in-use.ts), consulted when the next free port is chosen: a port
   * something listens on is not free, whatever the allocations say. A port asked for by number is allocated as asked
   * (a project's service may be running before its port is allocated).
   */
  avoidPortsInUse(inUse: () => ReadonlySet<number>): void {
    this.inUse = inUse;
  }

  /** The allocation of `port`, whoever holds it. */
  allocationOf(port: number): PortAllocation | undefined {
    return this.repository.find(port);
  }

  /** Allocates the given port, or the next free one of the project's range (never one something already listens on). */
  allocate(project: string, purpose: string, port?: number): PortAllocation {
    const range = this.rangeOf(project);
    if (port !== undefined && (port < range.from || port > range.to)) {
      throw new TunnelManagerError({
        code: 'PORT_OUT_OF_RANGE',
        message: `Port ${port} is outside ${project}'s range ${range.from}-${range.to}.`,
        fix: `Choose a port from ${range.from} to ${range.to}, or omit \`port\` to get the next free one.`,
        details: { port, project, range },
      });
    }
    const allocation = this.repository.allocate(project, purpose, range, port ?? null, this.now(), port === undefined ? this.inUse() : undefined);
    if (allocation) return allocation;
    if (port !== undefined) {
      const holder = this.repository.find(port);
      throw new TunnelManagerError({
        code: 'PORT_TAKEN',
        message:
          holder?.project === project
            ? `Port ${port} is already allocated to ${project} (purpose: ${holder.purpose}).`
            : `Port ${port} is already allocated.`,
        fix: holder?.project === project ? `Use port ${port} as it is, or release it first with port_release { "port": ${port} }.` : 'Omit `port` to get the next free one.',
        details: { port, project },
      });
    }
    throw new TunnelManagerError({
      code: 'PORT_RANGE_EXHAUSTED',
      message: `Every port of ${project}'s range ${range.from}-${range.to} is allocated or in use on the host.`,
      fix: 'Release ports you no longer use (port_list, then port_release), or ask the meta-supervisor for a larger range.',
      details: { project, range },
    });
  }

  release(project: string, port: number): void {
    if (!this.repository.release(project, port)) {
      throw this.notOwned(project, port);
    }
  }

  list(project?: string): PortAllocation[] {
    return this.repository.list(project);
  }

  /** Throws PORT_NOT_OWNED unless `port` is allocated to `project`. */
  assertOwned(project: string, port: number): PortAllocation {
    const allocation = this.repository.find(port);
    if (allocation?.project === project) return allocation;
    throw this.notOwned(project, port);
  }

  private notOwned(project: string, port: number): TunnelManagerError {
    const range = this.ranges.get(project);
    const inRange = range !== undefined && port >= range.from && port <= range.to;
    return new TunnelManagerError({
      code: 'PORT_NOT_OWNED',
      message: `Port ${port} is not allocated to ${project}.`,
      fix: inRange
        ? `Allocate it first: port_allocate { "port": ${port}, "purpose": "…" }.`
        : `Use a port of your range ${range ? `${range.from}-${range.to}` : '(none configured)'}: port_allocate { "purpose": "…" } gives you the next free one.`,
      details: { port, project, ...(range ? { range } : {}) },
    });
  }
}
