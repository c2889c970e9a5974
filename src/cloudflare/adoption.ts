import type { Domain } from '../store/domains-repository.ts';
import type { CloudflareProvider } from './cloudflare-provider.ts';
import type { DnsRecord } from './cloudflare-types.ts';
import { classifyRecord, type RecordOwnership } from './ownership-marker.ts';

/**
 * What adoption reads from Cloudflare: every CNAME of the given zones that points at our tunnel, with what its
 * ownership marker says. Cloudflare is only read. Deciding what enters the route ledger is the application's
 * (src/app/effects/adoption.ts): the provider layer answers what it found and writes nothing.
 */

export interface TunnelRecordFound {
  /** The record's name, lower case. */
  hostname: string;
  zoneId: string;
  zoneName: string;
  record: DnsRecord;
  /** `ours` (with the owner the marker names) or not. */
  ownership: RecordOwnership;
}

export interface TunnelRecordScan {
  records: TunnelRecordFound[];
  scannedZones: string[];
}

export async function findTunnelRecords(
  provider: Pick<CloudflareProvider, 'findTunnelCnames' | 'tunnelTarget'>,
  zones: Pick<Domain, 'zoneId' | 'name'>[],
): Promise<TunnelRecordScan> {
  const scan: TunnelRecordScan = { records: [], scannedZones: [] };
  for (const zone of zones) {
    const records = await provider.findTunnelCnames(zone.zoneId);
    scan.scannedZones.push(zone.name);
    for (const record of records) {
      scan.records.push({
        hostname: record.name.toLowerCase(),
        zoneId: zone.zoneId,
        zoneName: zone.name,
        record,
        ownership: classifyRecord(record, provider.tunnelTarget),
      });
    }
  }
  return scan;
}
