import { findTunnelRecords } from '../../cloudflare/adoption.ts';
import type { CloudflareProvider } from '../../cloudflare/cloudflare-provider.ts';
import type { Domain } from '../../store/domains-repository.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';

/**
 * Adoption: CNAMEs that already point at our tunnel but are not in the ledger (the seed's chat, code,
 * consilio and hejsan on 153.se) enter it as `adopted`, owned by the meta-supervisor (or the owner their
 * marker names), with `dnsCreated: false`. Cloudflare is only read (src/cloudflare/adoption.ts finds the
 * records); the ledger rows are written here. Idempotent: a hostname already in the ledger is skipped and reported.
 */

export interface AdoptionOptions {
  provider: Pick<CloudflareProvider, 'findTunnelCnames' | 'tunnelTarget'>;
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

export async function adoptExistingRecords(options: AdoptionOptions): Promise<AdoptionReport> {
  const adoptOwner = options.adoptOwner ?? 'meta-supervisor';
  const now = options.now ?? Date.now;
  const scan = await findTunnelRecords(options.provider, options.zones);
  const report: AdoptionReport = { adopted: [], skipped: [], refused: [], scannedZones: scan.scannedZones };
  for (const { hostname, zoneId, zoneName, record, ownership } of scan.records) {
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
    const rule = ownership.kind === 'ours' ? options.managedRules?.get(hostname) : undefined;
    const port = rule === undefined ? Number.NaN : Number(/:(\d+)(?:\/|$)/.exec(rule.service)?.[1]);
    const targetPort = Number.isInteger(port) && port > 0 ? port : null;
    const portRefused = rule === undefined || rule.path !== null || targetPort === null ? null : (options.claimPort?.(owner, targetPort, hostname) ?? null);
    if (portRefused !== null) report.refused.push({ hostname, reason: `not served: its rule targets port ${targetPort}, which ${owner} cannot hold (${portRefused}); adopted without a target` });
    if (rule !== undefined && rule.path === null && portRefused === null) {
      options.routes.insert({
        hostname,
        zoneId,
        zoneName,
        project: owner,
        targetPort,
        service: rule.service,
        targetReason: 'recovered from config.yml and the record\'s ownership marker after the ledger was lost',
        path: null,
        originRequest: rule.originRequest,
        dnsRecordId: record.id,
        dnsCreated: true,
        status: 'active',
        source: 'request',
        expiresAt: null,
        at: now(),
      });
      report.adopted.push({ hostname, zoneName, recordId: record.id, owner, basis: 'recovered' });
      continue;
    }
    options.routes.insert({
      hostname,
      zoneId,
      zoneName,
      project: owner,
      targetPort: null,
      service: null,
      targetReason: null,
      path: null,
      originRequest: null,
      dnsRecordId: record.id,
      dnsCreated: false,
      status: 'adopted',
      source: 'adopted',
      expiresAt: null,
      at: now(),
    });
    report.adopted.push({ hostname, zoneName, recordId: record.id, owner, basis: ownership.kind === 'ours' ? 'marker' : 'unmarked' });
  }
  return report;
}
