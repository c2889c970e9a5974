import type { Database } from 'better-sqlite3';

export interface PortAllocation {
  port: number;
  project: string;
  purpose: string;
  allocatedAt: number;
}

interface Row {
  port: number;
  project: string;
  purpose: string;
  allocated_at: number;
}

const toAllocation = (row: Row): PortAllocation => ({
  port: row.port,
  project: row.project,
  purpose: row.purpose,
  allocatedAt: row.allocated_at,
});

/** `port_allocations`: which project holds which port. */
export class PortsRepository {
  private readonly insert;
  private readonly selectOne;
  private readonly selectAll;
  private readonly selectByProject;
  private readonly selectTakenInRange;
  private readonly deleteOne;

  constructor(private readonly db: Database) {
    this.insert = db.prepare('INSERT INTO port_allocations (port, project, purpose, allocated_at) VALUES (?, ?, ?, ?)');
    this.selectOne = db.prepare<[number], Row>('SELECT * FROM port_allocations WHERE port = ?');
    this.selectAll = db.prepare<[], Row>('SELECT * FROM port_allocations ORDER BY port');
    this.selectByProject = db.prepare<[string], Row>('SELECT * FROM port_allocations WHERE project = ? ORDER BY port');
    this.selectTakenInRange = db.prepare<[number, number], { port: number }>('SELECT port FROM port_allocations WHERE port BETWEEN ? AND ? ORDER BY port');
    this.deleteOne = db.prepare('DELETE FROM port_allocations WHERE port = ? AND project = ?');
  }

  find(port: number): PortAllocation | undefined {
    const row = this.selectOne.get(port);
    return row ? toAllocation(row) : undefined;
  }

  list(project?: string): PortAllocation[] {
    const rows = project === undefined ? this.selectAll.all() : this.selectByProject.all(project);
    return rows.map(toAllocation);
  }

  /**
   * Allocates `port`, or the lowest free port of [from, to] that is not in `avoid` when `port` is null, atomically.
   * Returns undefined when the port is taken or the range is full.
   */
  allocate(
    project: string,
    purpose: string,
    range: { from: number; to: number },
    port: number | null,
    at: number,
    avoid: ReadonlySet<number> = new Set(),
  ): PortAllocation | undefined {
    return this.db
      .transaction((): PortAllocation | undefined => {
        let chosen = port;
        if (chosen === null) {
          const taken = new Set(this.selectTakenInRange.all(range.from, range.to).map((row) => row.port));
          for (let candidate = range.from; candidate <= range.to; candidate += 1) {
            if (!taken.has(candidate) && !avoid.has(candidate)) {
              chosen = candidate;
              break;
            }
          }
          if (chosen === null) return undefined;
        } else if (this.find(chosen)) {
          return undefined;
        }
        this.insert.run(chosen, project, purpose, at);
        return { port: chosen, project, purpose, allocatedAt: at };
      })
      .immediate();
  }

  release(project: string, port: number): boolean {
    return this.deleteOne.run(port, project).changes > 0;
  }
}
