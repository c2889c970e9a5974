import type { Domain } from '../store/domains-repository.ts';
import type { RoutesRepository } from '../store/routes-repository.ts';
import type { CloudflareProvider } from './cloudflare-provider.ts';
import { classifyRecord } from './ownership-marker.ts';

/**
 * Adoption: CNAMEs that already point at our tunnel but are not in the ledger (the seed's chat, code,
 * consilio and hejsan on 153.se) enter it as `adopted`, owned by the meta-supervisor (or the owner their
 * marker names), with `dnsCreated: false`. Cloudflare is only read, never written. Idempotent: a
 * hostname already in the ledger is skipped and reported.
 */

export interface AdoptionOptions {
  provider: Pick<CloudflareProvider, 'findTunnelCnames' | 'tunnelTarget'>;
  routes: RoutesRepository;
  /** The zones to scan, usually ZoneDirectory.list(). */
  zones: Pick<Domain, 'zoneId' | 'name'>[];
  /** Owner of adopted records without a marker; config cloudflare.adoptOwner, default meta-supervisor. */
  adoptOwner?: string;
  now?: () => number;
}

export interface AdoptedRoute {
  hostname: string;
  zoneName: string;
  recordId: string;
  owner: string;
  /** `marker` when the record carried our marker (the ledger was lost), `unmarked` when it predates us. */
  basis: 'marker' | 'unmarked';
}

export interface AdoptionReport {
  adopted: AdoptedRoute[];
  /** Found but left alone, with the reason in words. */
  skipped: { hostname: string; reason: string }[];
  scannedZones: string[];
}

export async function adoptExistingRecords(options: AdoptionOptions): Promise<AdoptionReport> {
  const adoptOwner = options.adoptOwner ?? 'meta-supervisor';
  const now = options.now ?? Date.now;
  const report: AdoptionReport = { adopted: [], skipped: [], scannedZones: [] };
  for (const zone of options.zones) {
    const records = await options.provider.findTunnelCnames(zone.zoneId);
    report.scannedZones.push(zone.name);
    for (const record of records) {
      const hostname = record.name.toLowerCase();
      const inLedger = options.routes.find(hostname);
      if (inLedger !== undefined) {
        report.skipped.push({ hostname, reason: `already in the ledger (owner ${inLedger.project}, status ${inLedger.status})` });
        continue;
      }
      const ownership = classifyRecord(record, options.provider.tunnelTarget);
      const owner = ownership.kind === 'ours' ? ownership.owner : adoptOwner;
      options.routes.insert({
        hostname,
        zoneId: zone.zoneId,
        zoneName: zone.name,
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
      report.adopted.push({ hostname, zoneName: zone.name, recordId: record.id, owner, basis: ownership.kind === 'ours' ? 'marker' : 'unmarked' });
    }
  }
  return report;
}
