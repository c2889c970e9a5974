import type { Database } from 'better-sqlite3';
import { jsonObject } from './json-column.ts';

export type RouteStatus = 'pending' | 'active' | 'deleting' | 'failed' | 'adopted';
export type RouteSource = 'request' | 'adopted';
/** Why the orphan scan thinks a route has lost its reason to exist (src/app/effects/orphan-effects.ts). */
export type OrphanReason = 'project-removed' | 'record-missing' | 'port-unallocated';

/** One row of the route ledger: who owns a hostname and where its ingress rule points. */
export interface Route {
  id: number;
  hostname: string;
  zoneId: string;
  zoneName: string;
  project: string;
  targetPort: number | null;
  /** The ingress `service`, e.g. `http://localhost:3100` or `http://web:80`. */
  service: string | null;
  /** Why that target was chosen, in plain words; rendered as a comment next to the rule. */
  targetReason: string | null;
  path: string | null;
  originRequest: Record<string, unknown> | null;
  dnsRecordId: string | null;
  /** Whether our saga created the DNS record (so a rollback may delete it). */
  dnsCreated: boolean;
  status: RouteStatus;
  source: RouteSource;
  expiresAt: number | null;
  /** The saga that reserved or last changed this route. */
  requestId: string | null;
  /** When the orphan scan first found the current `orphanReason`; null when the route is not an orphan. */
  orphanedSince: number | null;
  orphanReason: OrphanReason | null;
  /** Why the last change failed (`CODE: message`), e.g. a delete whose DNS step failed; null otherwise. */
  lastError: string | null;
  /** Set while a route published ahead of its service (publishAhead) waits for the service to answer first. */
  awaitingServiceSince: number | null;
  /** When the owner was told the service still does not answer; null until then. */
  awaitingServiceNoticedAt: number | null;
  /** The container whose `tunnel-manager.hostname` label declares this route; null for a route asked for by a tool. */
  labelContainer: string | null;
  /** A `deleting` route whose DNS record could not be deleted: the attempts that failed, and when the next one runs. */
  deleteAttempts: number;
  nextRetryAt: number | null;
  /** Put back by `restore` and not yet checked against the world (record, project, port): not served until it is. */
  unverifiedSince: number | null;
  createdAt: number;
  updatedAt: number;
}

/** One rule config.yml must hold for a route (the renderer's input). */
export interface ServedRule {
  hostname: string;
  path: string | null;
  service: string;
  project: string;
  targetReason: string | null;
  originRequest: Record<string, unknown> | null;
}

export type NewRoute = Omit<
  Route,
  'id' | 'createdAt' | 'updatedAt' | 'requestId' | 'orphanedSince' | 'orphanReason' | 'lastError' | 'awaitingServiceSince' | 'awaitingServiceNoticedAt' | 'labelContainer' | 'deleteAttempts' | 'nextRetryAt' | 'unverifiedSince'
> & {
  at: number;
  requestId?: string | null;
  awaitingServiceSince?: number | null;
};
export type RoutePatch = Partial<Omit<Route, 'id' | 'hostname' | 'createdAt' | 'updatedAt'>>;

interface RouteRow {
  id: number;
  hostname: string;
  zone_id: string;
  zone_name: string;
  project: string;
  target_port: number | null;
  service: string | null;
  target_reason: string | null;
  path: string | null;
  origin_request: string | null;
  dns_record_id: string | null;
  dns_created: number;
  status: RouteStatus;
  source: RouteSource;
  expires_at: number | null;
  request_id: string | null;
  orphaned_since: number | null;
  orphan_reason: OrphanReason | null;
  last_error: string | null;
  awaiting_service_since: number | null;
  awaiting_service_noticed_at: number | null;
  label_container: string | null;
  delete_attempts: number;
  next_retry_at: number | null;
  unverified_since: number | null;
  created_at: number;
  updated_at: number;
}

const COLUMN_OF: Record<keyof RoutePatch, keyof RouteRow> = {
  zoneId: 'zone_id',
  zoneName: 'zone_name',
  project: 'project',
  targetPort: 'target_port',
  service: 'service',
  targetReason: 'target_reason',
  path: 'path',
  originRequest: 'origin_request',
  dnsRecordId: 'dns_record_id',
  dnsCreated: 'dns_created',
  status: 'status',
  source: 'source',
  expiresAt: 'expires_at',
  requestId: 'request_id',
  orphanedSince: 'orphaned_since',
  orphanReason: 'orphan_reason',
  lastError: 'last_error',
  awaitingServiceSince: 'awaiting_service_since',
  awaitingServiceNoticedAt: 'awaiting_service_noticed_at',
  labelContainer: 'label_container',
  deleteAttempts: 'delete_attempts',
  nextRetryAt: 'next_retry_at',
  unverifiedSince: 'unverified_since',
};

function toRoute(row: RouteRow): Route {
  return {
    id: row.id,
    hostname: row.hostname,
    zoneId: row.zone_id,
    zoneName: row.zone_name,
    project: row.project,
    targetPort: row.target_port,
    service: row.service,
    targetReason: row.target_reason,
    path: row.path,
    originRequest: row.origin_request === null ? null : jsonObject(row.origin_request),
    dnsRecordId: row.dns_record_id,
    dnsCreated: row.dns_created === 1,
    status: row.status,
    source: row.source,
    expiresAt: row.expires_at,
    requestId: row.request_id,
    orphanedSince: row.orphaned_since,
    orphanReason: row.orphan_reason,
    lastError: row.last_error ?? null,
    awaitingServiceSince: row.awaiting_service_since ?? null,
    awaitingServiceNoticedAt: row.awaiting_service_noticed_at ?? null,
    labelContainer: row.label_container ?? null,
    deleteAttempts: row.delete_attempts ?? 0,
    nextRetryAt: row.next_retry_at ?? null,
    unverifiedSince: row.unverified_since ?? null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function isPatchKey(key: string): key is keyof RoutePatch {
  return Object.hasOwn(COLUMN_OF, key);
}

function toColumnValue(key: keyof RoutePatch, value: unknown): unknown {
  if (key === 'originRequest') return value === null || value === undefined ? null : JSON.stringify(value);
  if (key === 'dnsCreated') return value ? 1 : 0;
  if (key === 'deleteAttempts') return value ?? 0;
  return value ?? null;
}

/** The route ledger (`routes`). Hostnames compare case-insensitively. */
export class RoutesRepository {
  private readonly insertRow;
  private readonly selectOne;
  private readonly selectAll;
  private readonly selectByProject;
  private readonly selectByStatus;
  private readonly selectAwaiting;
  private readonly selectLabelled;
  private readonly selectServed;
  private readonly selectUnverified;
  private readonly markUnverified;
  private readonly deleteOne;
  private readonly countAll;
  private readonly pageAll;
  private readonly pageByProject;
  private readonly countByProject;
  private readonly countRequestedBy;

  constructor(private readonly db: Database) {
    this.insertRow = db.prepare(
      `INSERT INTO routes (hostname, zone_id, zone_name, project, target_port, service, target_reason, path,
         origin_request, dns_record_id, dns_created, status, source, expires_at, request_id, awaiting_service_since, created_at, updated_at)
       VALUES (@hostname, @zone_id, @zone_name, @project, @target_port, @service, @target_reason, @path,
         @origin_request, @dns_record_id, @dns_created, @status, @source, @expires_at, @request_id, @awaiting_service_since, @at, @at)`,
    );
    this.selectOne = db.prepare<[string], RouteRow>('SELECT * FROM routes WHERE hostname = ?');
    this.selectAll = db.prepare<[], RouteRow>('SELECT * FROM routes ORDER BY hostname');
    this.selectByProject = db.prepare<[string], RouteRow>('SELECT * FROM routes WHERE project = ? ORDER BY hostname');
    this.selectByStatus = db.prepare<[RouteStatus], RouteRow>('SELECT * FROM routes WHERE status = ? ORDER BY hostname');
    this.selectServed = db.prepare<[], RouteRow>("SELECT * FROM routes WHERE service IS NOT NULL AND status IN ('pending', 'active', 'adopted') AND unverified_since IS NULL ORDER BY hostname");
    this.selectUnverified = db.prepare<[], RouteRow>('SELECT * FROM routes WHERE unverified_since IS NOT NULL ORDER BY hostname');
    this.markUnverified = db.prepare('UPDATE routes SET unverified_since = ? WHERE unverified_since IS NULL');
    this.selectLabelled = db.prepare<[], RouteRow>('SELECT * FROM routes WHERE label_container IS NOT NULL ORDER BY hostname');
    this.selectAwaiting = db.prepare<[], RouteRow>("SELECT * FROM routes WHERE awaiting_service_since IS NOT NULL AND status = 'active' ORDER BY hostname");
    this.deleteOne = db.prepare('DELETE FROM routes WHERE hostname = ?');
    this.countAll = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM routes');
    this.countByProject = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM routes WHERE project = ?');
    this.countRequestedBy = db.prepare<[string], { n: number }>("SELECT COUNT(*) AS n FROM routes WHERE project = ? AND source = 'request'");
    this.pageAll = db.prepare<[string, number], RouteRow>('SELECT * FROM routes WHERE hostname > ? ORDER BY hostname LIMIT ?');
    this.pageByProject = db.prepare<[string, string, number], RouteRow>('SELECT * FROM routes WHERE project = ? AND hostname > ? ORDER BY hostname LIMIT ?');
  }

  /** Inserts a new row; throws SQLITE_CONSTRAINT_UNIQUE if the hostname is already in the ledger. */
  insert(route: NewRoute): Route {
    this.insertRow.run({
      hostname: route.hostname.toLowerCase(),
      zone_id: route.zoneId,
      zone_name: route.zoneName,
      project: route.project,
      target_port: route.targetPort,
      service: route.service,
      target_reason: route.targetReason,
      path: route.path,
      origin_request: toColumnValue('originRequest', route.originRequest),
      dns_record_id: route.dnsRecordId,
      dns_created: route.dnsCreated ? 1 : 0,
      status: route.status,
      source: route.source,
      expires_at: route.expiresAt,
      request_id: route.requestId ?? null,
      awaiting_service_since: route.awaitingServiceSince ?? null,
      at: route.at,
    });
    const inserted = this.find(route.hostname);
    if (inserted === undefined) throw new Error(`The route ${route.hostname} was inserted but cannot be read back.`);
    return inserted;
  }

  /**
   * Inserts a new row unless its project already holds `quota` routes it asked for (0: no limit; adopted rows never
   * count), counting and inserting in one transaction, so parallel reservations can never overshoot the quota.
   * Answers the count found when it refused; throws SQLITE_CONSTRAINT_UNIQUE as `insert` does.
   */
  insertWithinQuota(route: NewRoute, quota: number): { inserted: true } | { inserted: false; held: number } {
    return this.db
      .transaction((): { inserted: true } | { inserted: false; held: number } => {
        if (quota > 0 && route.source === 'request') {
          const held = this.requestedBy(route.project);
          if (held >= quota) return { inserted: false, held };
        }
        this.insert(route);
        return { inserted: true };
      })
      .immediate();
  }

  find(hostname: string): Route | undefined {
    const row = this.selectOne.get(hostname);
    return row ? toRoute(row) : undefined;
  }

  list(filter: { project?: string } = {}): Route[] {
    const rows = filter.project === undefined ? this.selectAll.all() : this.selectByProject.all(filter.project);
    return rows.map(toRoute);
  }

  /** The routes in one status (e.g. `deleting`, read on every ingress cycle), without reading the whole ledger. */
  withStatus(status: RouteStatus): Route[] {
    return this.selectByStatus.all(status).map(toRoute);
  }

  /**
   * What config.yml must route: every route with a target that is being published, serving or adopted (and not waiting
   * to be checked after a restore), as the ingress renderer takes it (hostname order).
   */
  servedRules(): ServedRule[] {
    // The query keeps only rows with a service; the check says so to the type.
    return this.selectServed.all().flatMap((row) => {
      const route = toRoute(row);
      if (route.service === null) return [];
      return [{ hostname: route.hostname, path: route.path, service: route.service, project: route.project, targetReason: route.targetReason, originRequest: route.originRequest }];
    });
  }

  /** Deletes no saga holds (their DNS record could not be deleted), in the order their retries are due. */
  stuckDeletes(): Route[] {
    return this.withStatus('deleting')
      .filter((route) => route.requestId === null)
      .sort((a, b) => (a.nextRetryAt ?? 0) - (b.nextRetryAt ?? 0));
  }

  /** After `restore`: every row waits to be checked against the world before it is served again. Answers how many. */
  markAllUnverified(at: number): number {
    return this.markUnverified.run(at).changes;
  }

  /** The rows `restore` put back that the next start has not checked yet. */
  unverified(): Route[] {
    return this.selectUnverified.all().map(toRoute);
  }

  /** Adopted routes being deleted: their hand-written rules go from config.yml with them. */
  retiredAdoptedHostnames(): string[] {
    return this.withStatus('deleting').filter((route) => route.source === 'adopted').map((route) => route.hostname);
  }

  /** The routes declared by a container's labels. */
  labelled(): Route[] {
    return this.selectLabelled.all().map(toRoute);
  }

  /** The active routes published ahead of their service that still wait for it to answer. */
  awaitingService(): Route[] {
    return this.selectAwaiting.all().map(toRoute);
  }

  /**
   * One page in hostname order: the routes after `after` (exclusive; '' for the first page), at most `limit`,
   * and the total that matches the filter.
   */
  page(filter: { project?: string | undefined; after: string; limit: number }): { routes: Route[]; total: number } {
    const rows =
      filter.project === undefined
        ? this.pageAll.all(filter.after, filter.limit)
        : this.pageByProject.all(filter.project, filter.after, filter.limit);
    const total = filter.project === undefined ? this.countAll.get() : this.countByProject.get(filter.project);
    return { routes: rows.map(toRoute), total: total?.n ?? 0 };
  }

  update(hostname: string, patch: RoutePatch, at: number): Route | undefined {
    const keys = Object.keys(patch).filter(isPatchKey).filter((key) => patch[key] !== undefined);
    if (keys.length > 0) {
      const assignments = keys.map((key) => `${COLUMN_OF[key]} = ?`).join(', ');
      this.db
        .prepare(`UPDATE routes SET ${assignments}, updated_at = ? WHERE hostname = ?`)
        .run(...keys.map((key) => toColumnValue(key, patch[key])), at, hostname);
    }
    return this.find(hostname);
  }

  remove(hostname: string): boolean {
    return this.deleteOne.run(hostname).changes > 0;
  }

  /**
   * How many routes one project asked for (the tool or a label), in any status. Adopted routes are not counted: they
   * were found in the account, and counting them would put their owner at its quota without it asking for anything.
   */
  requestedBy(project: string): number {
    return this.countRequestedBy.get(project)?.n ?? 0;
  }

  count(): number {
    return this.countAll.get()?.n ?? 0;
  }
}
