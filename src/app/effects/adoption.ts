import { findTunnelRecords } from '../../cloudflare/adoption.ts';
import type { OwnershipRegistry } from '../../cloudflare/ownership-registry.ts';
import type { Domain } from '../../store/domains-repository.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';

/**
 * Adoption: CNAMEs that already point at our tunnel but are not in the ledger (the seed's chat, code,
 * consilio and hejsan on 153.se) enter it as `adopted`, owned by the meta-supervisor (or the owner their
 * marker names), with `dnsCreated: false`. Cloudflare is only read (src/cloudflare/adoption.ts finds the
 * records); the ledger rows are written here. Idempotent: a hostname already in the ledger is skipped and reported.
 */

export interface AdoptionOptions {
  provider: Pick<OwnershipRegistry, 'findTunnelCnames' | 'ownership'>;
  routes: RoutesRepository;
  /** The zones to scan, usually ZoneDirectory.list(). */
  zones: Pick<Domain, 'zoneId' | 'name'>[];
  /** Owner of adopted records without a marker; config cloudflare.adoptOwner, default meta-supervisor. */
  adoptOwner?: string;
  /**
   * The managed rules config.yml still holds (hostname → rule). A record carrying our marker whose managed rule is
   * there was a live route whose ledger row was lost: it is recovered as `active` with that rule's target, for the
   * project its marker names, so it keeps serving; without a rule it is adopted as usual.
   */
  managedRules?: ReadonlyMap<string, { service: string; path: string | null; originRequest: Record<string, unknown> | null }>;
  /**
   * The configured projects: a record whose marker names another is not taken into the ledger (reported in
   * `refused`), so no row, rule or metric label ever carries a project that does not exist.
   */
  projects: ReadonlySet<string>;
  /**
   * Gives a recovered route's port to its project (already held, or allocated now): null when it holds it, else why
   * not. A route whose project cannot hold its port is adopted without a target (not served) and reported.
   */
  claimPort?: (owner: string, port: number, hostname: string) => string | null;
  now?: () => number;
}

export interface AdoptedRoute {
  hostname: string;
  zoneName: string;
  recordId: string;
  owner: string;
  /**
   * `recovered`: our marker and our managed rule were both there (the ledger row was lost; back as active, same
   * target); `marker`: our marker without a rule; `unmarked`: the record predates us.
   */
  basis: 'recovered' | 'marker' | 'unmarked';
}

export interface AdoptionReport {
  adopted: AdoptedRoute[];
  /** Found but left alone, with the reason in words. */
  skipped: { hostname: string; reason: string }[];
  /** Not taken into the ledger, or taken without its target (not served), with the reason in words. */
  refused: { hostname: string; reason: string }[];
  scannedZones: string[];
}

type Found = Awaited<ReturnType<typeof findTunnelRecords>>['records'][number];

/**
 * The rule config.yml still holds for a record of ours, when its project may serve it: the row comes back `active`
 * with that target. Null when there is no such rule, or its port is refused (reported, adopted without a target).
 */
function servedRule(options: AdoptionOptions, found: Found, owner: string, report: AdoptionReport) {
  const rule = found.ownership.kind === 'ours' ? options.managedRules?.get(found.hostname) : undefined;
  if (rule === undefined || rule.path !== null) return null;
  const port = Number(/:(\d+)(?:\/|$)/.exec(rule.service)?.[1]);
  const targetPort = Number.isInteger(port) && port > 0 ? port : null;
  const refused = targetPort === null ? null : (options.claimPort?.(owner, targetPort, found.hostname) ?? null);
  if (refused === null) return { ...rule, targetPort };
  report.refused.push({ hostname: found.hostname, reason: `not served: its rule targets port ${targetPort}, which ${owner} cannot hold (${refused}); adopted without a target` });
  return null;
}

/** The ledger row of a found record: recovered with its rule (`active`), or adopted (no target, not served). */
function rowFor(found: Found, owner: string, rule: ReturnType<typeof servedRule>, at: number) {
  const record = { hostname: found.hostname, zoneId: found.zoneId, zoneName: found.zoneName, project: owner, path: null, dnsRecordId: found.record.id, expiresAt: null, at };
  if (rule !== null) {
    const targetReason = "recovered from config.yml and the record's ownership marker after the ledger was lost";
    return { ...record, targetPort: rule.targetPort, service: rule.service, targetReason, originRequest: rule.originRequest, dnsCreated: true, status: 'active' as const, source: 'request' as const };
  }
  return { ...record, targetPort: null, service: null, targetReason: null, originRequest: null, dnsCreated: false, status: 'adopted' as const, source: 'adopted' as const };
}

export async function adoptExistingRecords(options: AdoptionOptions): Promise<AdoptionReport> {
  const adoptOwner = options.adoptOwner ?? 'meta-supervisor';
  const now = options.now ?? Date.now;
  const scan = await findTunnelRecords(options.provider, options.zones);
  const report: AdoptionReport = { adopted: [], skipped: [], refused: [], scannedZones: scan.scannedZones };
  for (const found of scan.records) {
    const { hostname, zoneName, record, ownership } = found;
    const inLedger = options.routes.find(hostname);
    if (inLedger !== undefined) {
      report.skipped.push({ hostname, reason: `already in the ledger (owner ${inLedger.project}, status ${inLedger.status})` });
      continue;
    }
    const owner = ownership.kind === 'ours' ? ownership.owner : adoptOwner;
    if (!options.projects.has(owner)) {
      report.refused.push({ hostname, reason: `its ownership marker names ${owner}, which is not a configured project: not taken into the ledger (the orphan scan reports it)` });
      continue;
    }
    const rule = servedRule(options, found, owner, report);
    options.routes.insert(rowFor(found, owner, rule, now()));
    const basis = rule !== null ? 'recovered' : ownership.kind === 'ours' ? 'marker' : 'unmarked';
    report.adopted.push({ hostname, zoneName, recordId: record.id, owner, basis });
  }
  return report;
}
