import type { Domain } from '../store/domains-repository.ts';
import type { Hostname } from '../hostname.ts';
import type { DnsRecord } from './cloudflare-types.ts';
import type { RecordOwnership } from './ownership-marker.ts';
import type { OwnershipRegistry } from './ownership-registry.ts';

/**
 * What adoption reads from Cloudflare: every CNAME of the given zones that points at our tunnel, with what its
 * ownership marker says. Cloudflare is only read. Deciding what enters the route ledger is the application's
 * (src/app/effects/adoption.ts): the provider layer answers what it found and writes nothing.
 */

export interface TunnelRecordFound {
  hostname: Hostname;
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
  registry: Pick<OwnershipRegistry, 'findTunnelCnames' | 'ownership'>,
  zones: Pick<Domain, 'zoneId' | 'name'>[],
): Promise<TunnelRecordScan> {
  const scan: TunnelRecordScan = { records: [], scannedZones: [] };
  for (const zone of zones) {
    const records = await registry.findTunnelCnames(zone.zoneId);
    scan.scannedZones.push(zone.name);
    for (const record of records) {
      scan.records.push({
        hostname: record.name,
        zoneId: zone.zoneId,
        zoneName: zone.name,
        record,
        ownership: registry.ownership(record),
      });
    }
  }
  return scan;
}
