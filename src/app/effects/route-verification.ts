import type { DnsRecord } from '../../cloudflare/cloudflare-types.ts';
import type { OwnershipRegistry } from '../../cloudflare/ownership-registry.ts';
import { toErrorShape } from '../../errors.ts';
import type { PortAllocation } from '../../store/ports-repository.ts';
import type { Route, RoutesRepository } from '../../store/routes-repository.ts';

/**
 * A database put back by `restore` is input from outside, not a record of what this manager did: the rows it brings
 * back (`unverifiedSince`) are not served until the next start has checked each one against the world. A row is
 * served again only when its DNS record is ours (our marker naming the row's project, or for an adopted route the
 * record it adopted, and pointing at our tunnel), its project is configured, and its port is allocated to that
 * project. Any other row becomes `failed`, keeps no claim on a record that is not ours (so deleting it deletes
 * nothing in Cloudflare), and is reported, to its project when it is one and to the meta-supervisor. The zones actor
 * runs this on each refresh while unchecked rows remain (src/app/effects/zones-effects.ts); a Cloudflare failure changes
 * nothing and the refresh is retried.
 */

export interface VerificationDeps {
  routes: RoutesRepository;
  provider: Pick<OwnershipRegistry, 'findTunnelCnames' | 'ownership'>;
  projects: ReadonlySet<string>;
  allocations: () => PortAllocation[];
  /** The meta-supervisor: told of every row that is not served. */
  operatorProject: string;
  publish: (kind: string, project: string, data: Record<string, unknown>) => void;
  now?: () => number;
}

export interface VerificationOutcome {
  /** Rows that passed: served again. */
  served: string[];
  /** Rows that did not: `failed`, with why. */
  refused: { hostname: string; project: string; reason: string }[];
}

/** Whether the tunnel CNAMEs of the route's zone hold its record: ours for its project, or the one it adopted. */
function recordIsOurs(route: Route, records: DnsRecord[], registry: VerificationDeps['provider']): { ours: boolean; named: number } {
  const named = records.filter((record) => record.name === route.hostname);
  const ours = named.some((record) => {
    const ownership = registry.ownership(record);
    if (ownership.kind === 'ours') return ownership.owner === route.project;
    return route.source === 'adopted' && record.id === route.dnsRecordId;
  });
  return { ours, named: named.length };
}

/** Why `route` may not be served, or null when it may (a pending row's record is its saga's to make). */
function problemWith(route: Route, record: { ours: boolean; named: number }, facts: { projects: ReadonlySet<string>; portHolder: ReadonlyMap<number, string> }): string | null {
  if (!facts.projects.has(route.project)) return `its project ${route.project} is not in the configuration`;
  if (route.status !== 'pending' && !record.ours) {
    return record.named === 0
      ? `Cloudflare has no CNAME ${route.hostname} pointing at this tunnel`
      : `the CNAME ${route.hostname} in Cloudflare does not carry our marker for ${route.project}`;
  }
  if (route.targetPort !== null && facts.portHolder.get(route.targetPort) !== route.project) return `port ${route.targetPort} is not allocated to ${route.project}`;
  return null;
}

export async function verifyRestoredRoutes(deps: VerificationDeps): Promise<VerificationOutcome> {
  const now = deps.now ?? Date.now;
  const unverified = deps.routes.unverified();
  const outcome: VerificationOutcome = { served: [], refused: [] };
  if (unverified.length === 0) return outcome;
  const recordsByZone = new Map<string, DnsRecord[]>();
  for (const zoneId of new Set(unverified.map((route) => route.zoneId))) {
    try {
      recordsByZone.set(zoneId, await deps.provider.findTunnelCnames(zoneId));
    } catch (error) {
      // A zone gone from the account has no records of ours; anything else is retried with the refresh.
      if (toErrorShape(error).code !== 'ZONE_NOT_FOUND') throw error;
      recordsByZone.set(zoneId, []);
    }
  }
  const facts = { projects: deps.projects, portHolder: new Map(deps.allocations().map((allocation) => [allocation.port, allocation.project])) };
  for (const route of unverified) {
    const record = recordIsOurs(route, recordsByZone.get(route.zoneId) ?? [], deps.provider);
    const problem = route.status === 'failed' ? null : problemWith(route, record, facts);
    if (problem === null) {
      deps.routes.update(route.hostname, { unverifiedSince: null }, now());
      if (route.status !== 'failed') outcome.served.push(route.hostname);
      continue;
    }
    deps.routes.update(
      route.hostname,
      {
        unverifiedSince: null,
        // A row being deleted stays so; anything else stops being served.
        ...(route.status === 'deleting' ? {} : { status: 'failed' as const }),
        lastError: `RESTORE_UNVERIFIED: not served after the restore: ${problem}`,
        // A record that is not ours is never deleted on this row's behalf.
        ...(record.ours ? {} : { dnsRecordId: null, dnsCreated: false }),
      },
      now(),
    );
    outcome.refused.push({ hostname: route.hostname, project: route.project, reason: problem });
    const data = {
      hostname: route.hostname,
      project: route.project,
      reason: problem,
      fix: `${route.hostname} is not served. If it should be, publish it again: tunnel_delete_cname { "hostname": "${route.hostname}" } (its project or the meta-supervisor; it deletes no record that is not ours), then tunnel_request_cname.`,
    };
    const told = new Set([deps.operatorProject]);
    if (deps.projects.has(route.project)) told.add(route.project);
    for (const project of told) deps.publish('route.unverified', project, data);
  }
  return outcome;
}
