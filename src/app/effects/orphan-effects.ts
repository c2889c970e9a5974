/**
 * Orphans: routes in the ledger that have lost their reason to exist.
 *
 * - `project-removed`: the owner is no longer a project of the configuration (the project was deleted).
 *   Its routes are removed once `orphans.projectRemovedGraceHours` have passed since the scan found it
 *   (`dueForRemoval`), so a project taken out of the config by mistake can be put back in time.
 * - `record-missing`: the zone has no CNAME of that name pointing at the tunnel any more (deleted or
 *   changed in the dashboard), so the hostname no longer reaches the tunnel.
 * - `port-unallocated`: the route targets a port its project no longer holds.
 *
 * The scan only flags and tells (`route.orphaned` to the owner, `route.orphan_resolved` when it is fixed);
 * removing is the owner's or the meta-supervisor's call, except for removed projects.
 *
 * The other way round, it also lists **unledgered records**: CNAMEs in the account's zones that carry our ownership
 * marker and point at our tunnel but have no row in the ledger (a database restored from an old backup, a row lost
 * by hand). None is left where no tool sees it: one marked for a configured project is taken into the ledger as an
 * adopted route of that project (not served: it has no target), which tunnel_list_cnames lists and its owner or the
 * meta-supervisor can delete with tunnel_delete_cname; one marked for a project that is not configured is reported
 * to the meta-supervisor, who removes it in the dashboard. Each is told (`record.unledgered`) and answered by the
 * scan. Nothing is deleted by the scan: a name someone still uses is the owner's to remove.
 */
import type { Logger } from 'pino';
import { fromPromise } from 'xstate';
import { orphansMachine, type OrphanScanOutput } from '../../../machines/orphans.machine.ts';
import type { DnsRecord } from '../../cloudflare/cloudflare-types.ts';
import type { OwnershipRegistry } from '../../cloudflare/ownership-registry.ts';
import type { OrphanScanResult } from '../../contract/routes.ts';
import { toErrorShape } from '../../errors.ts';
import type { PortAllocation } from '../../store/ports-repository.ts';
import type { Route, RoutesRepository } from '../../store/routes-repository.ts';

/** One orphaned route: what is wrong (`detail`) and what to do about it (`fix`). */
export type OrphanFinding = Omit<OrphanScanResult['orphans'][number], 'since'>;

export interface OrphanPolicy {
  /** Hours after which the routes of a removed project are removed; null: never automatically. */
  projectRemovedGraceHours: number | null;
}

/** Routes the scan looks at: settled ones (a saga in flight owns the others). */
export function isSettled(route: Route): boolean {
  return route.status === 'active' || route.status === 'adopted';
}

function deleteCall(hostname: string): string {
  return `tunnel_delete_cname { "hostname": "${hostname}" }`;
}

/**
 * Why `route` is an orphan, or null. `tunnelNames` is the set of (normalised) names that have a CNAME to the
 * tunnel in the route's zone, or null when the zone was not listed (the record check is then skipped).
 */
export function classifyRoute(
  route: Route,
  facts: {
    projects: ReadonlySet<string>;
    portHolder: ReadonlyMap<number, string>;
    tunnelNames: ReadonlySet<string> | null;
    /** The route's zone is gone from the account (its listing answered ZONE_NOT_FOUND). */
    zoneGone?: boolean;
    /** When the route would be removed if its project is gone (removalTime); null: never automatically. */
    removeAt: number | null;
  },
): OrphanFinding | null {
  const { hostname, project } = route;
  if (!facts.projects.has(project)) {
    const at = facts.removeAt;
    return {
      hostname,
      project,
      reason: 'project-removed',
      detail: `Project "${project}" is no longer in the configuration, so nobody owns ${hostname}.`,
      fix:
        `Put project "${project}" back in the configuration's projects to keep it. ` +
        (at === null
          ? `Otherwise the meta-supervisor removes it: ${deleteCall(hostname)} (orphans.projectRemovedGraceHours is off).`
          : `Otherwise it is removed at ${new Date(at).toISOString()} (orphans.projectRemovedGraceHours), or now by the meta-supervisor: ${deleteCall(hostname)}.`),
    };
  }
  if (facts.tunnelNames !== null && !facts.tunnelNames.has(hostname)) {
    return {
      hostname,
      project,
      reason: 'record-missing',
      detail: facts.zoneGone
        ? `Zone ${route.zoneName} is no longer in the Cloudflare account, so ${hostname} has no DNS record and does not reach the tunnel.`
        : `Zone ${route.zoneName} has no CNAME ${hostname} pointing at the tunnel any more (deleted or changed outside Tunnel Manager), so the hostname does not reach the tunnel.`,
      fix: `To publish it again, delete the route (${deleteCall(hostname)}) and request it again (tunnel_request_cname), which recreates the record; or delete it if it is no longer wanted.`,
    };
  }
  if (route.targetPort !== null && facts.portHolder.get(route.targetPort) !== project) {
    const port = route.targetPort;
    return {
      hostname,
      project,
      reason: 'port-unallocated',
      detail: `${hostname} targets port ${port}, which is no longer allocated to ${project}.`,
      fix: `Allocate it again to keep serving it (port_allocate { "port": ${port}, "purpose": "…" }), or delete the route: ${deleteCall(hostname)}.`,
    };
  }
  return null;
}

export type { OrphanScanResult };

export interface OrphanScanDeps {
  routes: RoutesRepository;
  allocations: () => PortAllocation[];
  projects: () => ReadonlySet<string>;
  provider: Pick<OwnershipRegistry, 'findTunnelCnames' | 'ownership'>;
  /** Every zone of the account (the zones cache): unledgered records are looked for in all of them. */
  zones?: () => { zoneId: string; name: string }[];
  policy: OrphanPolicy;
  publish: (kind: string, project: string, data: Record<string, unknown>) => void;
  now?: () => number;
}

/** When the routes of a removed project are due for removal; null when they never are automatically. */
export function removalTime(route: Route, policy: OrphanPolicy, now: number): number | null {
  if (policy.projectRemovedGraceHours === null) return null;
  const since = route.orphanReason === 'project-removed' && route.orphanedSince !== null ? route.orphanedSince : now;
  return since + policy.projectRemovedGraceHours * 3_600_000;
}

/** The tunnel CNAMEs of every zone the scan looks at, by zone id; a zone gone from the account has none. */
interface TunnelRecords {
  byZone: Map<string, { name: string; records: DnsRecord[] }>;
  zonesGone: Set<string>;
}

/** Lists the tunnel CNAMEs of the routes' zones and of every zone of the account. Throws when a zone cannot be listed. */
async function listTunnelRecords(deps: OrphanScanDeps, settled: readonly Route[]): Promise<TunnelRecords> {
  const found: TunnelRecords = { byZone: new Map(), zonesGone: new Set() };
  const zonesToList = new Map<string, string>(settled.map((route) => [route.zoneId, route.zoneName]));
  for (const zone of deps.zones?.() ?? []) if (!zonesToList.has(zone.zoneId)) zonesToList.set(zone.zoneId, zone.name);
  for (const [zoneId, zoneName] of zonesToList) {
    let records: DnsRecord[];
    try {
      records = await deps.provider.findTunnelCnames(zoneId);
    } catch (error) {
      // A zone deleted from the account has no records: its routes are orphans, not a reason to stop scanning.
      if (toErrorShape(error).code !== 'ZONE_NOT_FOUND') throw error;
      records = [];
      found.zonesGone.add(zoneId);
    }
    found.byZone.set(zoneId, { name: zoneName, records });
  }
  return found;
}

/** Records marked as ours that the ledger does not hold: adopted for a configured project, reported either way. */
function reportUnledgered(deps: OrphanScanDeps, found: TunnelRecords, all: readonly Route[], projects: ReadonlySet<string>, now: number): OrphanScanResult['unledgered'] {
  const unledgered: OrphanScanResult['unledgered'] = [];
  // Ledger rows and record names are both normalised where they entered: compared as they are.
  const inLedger = new Set(all.map((route) => route.hostname));
  for (const [zoneId, { name: zone, records }] of found.byZone) {
    for (const record of records) {
      const ownership = deps.provider.ownership(record);
      const hostname = record.name;
      if (ownership.kind !== 'ours' || inLedger.has(hostname)) continue;
      // Looked up again: a request may have reserved the name while the zones were listed.
      const adopted = projects.has(ownership.owner) && deps.routes.find(hostname) === undefined;
      if (adopted) adoptUnledgered(deps.routes, { hostname, zoneId, zone, recordId: record.id, owner: ownership.owner }, now);
      const fix = adopted
        ? `${hostname} is now listed as an adopted route of ${ownership.owner} (tunnel_list_cnames; it serves nothing). To remove the record: tunnel_delete_cname { "hostname": "${hostname}" } (${ownership.owner} or the meta-supervisor); to publish it again, delete it, then tunnel_request_cname.`
        : `No project ${ownership.owner} is configured: the meta-supervisor deletes record ${record.id} in the Cloudflare dashboard if nobody uses ${hostname}, or puts the project back in the configuration (the next scan then adopts it for ${ownership.owner}).`;
      unledgered.push({ hostname, zone, recordId: record.id, owner: ownership.owner, adopted, fix });
      deps.publish('record.unledgered', adopted ? ownership.owner : '*', { hostname, zone, recordId: record.id, adopted, fix });
    }
  }
  return unledgered;
}

/** Flags one settled route (or clears its flag) in the ledger, tells its owner, and notes it in the result. */
function judgeRoute(deps: OrphanScanDeps, route: Route, facts: Omit<Parameters<typeof classifyRoute>[1], 'removeAt'>, result: OrphanScanResult): void {
  const now = result.at;
  const removeAt = removalTime(route, deps.policy, now);
  const finding = classifyRoute(route, { ...facts, removeAt });
  if (finding === null) {
    if (route.orphanReason !== null) {
      deps.routes.update(route.hostname, { orphanedSince: null, orphanReason: null }, now);
      deps.publish('route.orphan_resolved', route.project, { hostname: route.hostname, was: route.orphanReason });
      result.resolved.push(route.hostname);
    }
    return;
  }
  let since = route.orphanedSince ?? now;
  if (route.orphanReason !== finding.reason) {
    since = now;
    deps.routes.update(route.hostname, { orphanedSince: since, orphanReason: finding.reason }, now);
    // A new reason counts from now, which is what removalTime gave a route not yet flagged for it.
    deps.publish('route.orphaned', route.project, {
      ...finding,
      removeAt: finding.reason === 'project-removed' && removeAt !== null ? new Date(removeAt).toISOString() : null,
    });
    result.newlyOrphaned.push(route.hostname);
  }
  result.orphans.push({ ...finding, since: new Date(since).toISOString() });
}

/**
 * Looks at every settled route, flags the orphans in the ledger (`orphanedSince`, `orphanReason`), tells the
 * owner of each new orphan and of each one resolved. Throws (changing nothing) when a zone cannot be listed.
 */
export async function scanOrphans(deps: OrphanScanDeps): Promise<OrphanScanResult> {
  const now = (deps.now ?? Date.now)();
  const all = deps.routes.list();
  const settled = all.filter(isSettled);
  const found = await listTunnelRecords(deps, settled);
  const zonesChecked = [...found.byZone.values()].map((zone) => zone.name);
  const projects = deps.projects();
  const portHolder = new Map(deps.allocations().map((allocation) => [allocation.port, allocation.project]));
  const result: OrphanScanResult = { at: now, routes: settled.length, zonesChecked, orphans: [], newlyOrphaned: [], resolved: [], unledgered: [] };
  result.unledgered = reportUnledgered(deps, found, all, projects, now);
  const namesByZone = new Map([...found.byZone].map(([zoneId, zone]) => [zoneId, new Set<string>(zone.records.map((record) => record.name))]));
  for (const route of settled) {
    judgeRoute(deps, route, { projects, portHolder, tunnelNames: namesByZone.get(route.zoneId) ?? null, zoneGone: found.zonesGone.has(route.zoneId) }, result);
  }
  return result;
}

/** An unledgered record of a configured project enters the ledger as an adopted route of it (no target: not served). */
function adoptUnledgered(routes: RoutesRepository, record: { hostname: string; zoneId: string; zone: string; recordId: string; owner: string }, now: number): void {
  routes.insert({
    hostname: record.hostname,
    zoneId: record.zoneId,
    zoneName: record.zone,
    project: record.owner,
    targetPort: null,
    service: null,
    targetReason: null,
    path: null,
    originRequest: null,
    dnsRecordId: record.recordId,
    dnsCreated: false,
    status: 'adopted',
    source: 'adopted',
    expiresAt: null,
    at: now,
  });
}

/** The routes of removed projects whose grace period is over, for the caller to delete. */
export function dueForRemoval(routes: readonly Route[], policy: OrphanPolicy, now: number): Route[] {
  return routes.filter((route) => {
    if (!isSettled(route) || route.orphanReason !== 'project-removed') return false;
    const at = removalTime(route, policy, now);
    return at !== null && at <= now;
  });
}

/**
 * The orphans actor's effect: one scan, logged, then `afterScan` (the routes a grace period of 0 made due are removed
 * at once rather than at the next minute's check).
 */
export function provideOrphanEffects(deps: OrphanScanDeps & { logger: Logger; afterScan: () => void }) {
  return orphansMachine.provide({
    actors: {
      scanOrphans: fromPromise<OrphanScanOutput, void>(async () => {
        const result = await scanOrphans(deps);
        deps.logger.info({ routes: result.routes, orphans: result.orphans.length, newlyOrphaned: result.newlyOrphaned, resolved: result.resolved }, 'orphan scan');
        deps.afterScan();
        return result;
      }),
    },
  });
}
