import type { DnsRecord } from './cloudflare-types.ts';
import { classifyRecord } from './ownership-marker.ts';

/**
 * The plan (external-dns's term): given what Cloudflare holds under a name, what to do to make
 * `hostname` a CNAME of ours for `owner`, or to remove it. Pure; the provider carries it out.
 */

export type EnsureCnamePlan =
  | { action: 'create' }
  /** Ours, for this owner, already right. */
  | { action: 'reuse'; record: DnsRecord }
  /** Ours, for this owner, but no longer proxied: put it back as we made it. */
  | { action: 'repair'; record: DnsRecord }
  | { action: 'refuse'; reason: 'foreign' | 'other-owner'; conflicting: DnsRecord[]; owner?: string };

export type DeleteCnamePlan =
  | { action: 'delete'; record: DnsRecord }
  | { action: 'absent' }
  | { action: 'refuse'; reason: 'foreign' | 'other-owner'; conflicting: DnsRecord[]; owner?: string };

function sameName(records: DnsRecord[], hostname: string): DnsRecord[] {
  const name = hostname.toLowerCase();
  return records.filter((record) => record.name.toLowerCase() === name);
}

export function planEnsureCname(input: { hostname: string; owner: string; tunnelTarget: string; existing: DnsRecord[] }): EnsureCnamePlan {
  const records = sameName(input.existing, input.hostname);
  if (records.length === 0) return { action: 'create' };
  const ours = records.filter((record) => {
    const ownership = classifyRecord(record, input.tunnelTarget);
    return ownership.kind === 'ours' && ownership.owner === input.owner;
  });
  const others = records.filter((record) => !ours.includes(record));
  if (others.length > 0) {
    const ownedByOther = others
      .map((record) => classifyRecord(record, input.tunnelTarget))
      .find((ownership) => ownership.kind === 'ours');
    return ownedByOther?.kind === 'ours'
      ? { action: 'refuse', reason: 'other-owner', conflicting: others, owner: ownedByOther.owner }
      : { action: 'refuse', reason: 'foreign', conflicting: others };
  }
  const record = ours[0] as DnsRecord;
  return record.proxied ? { action: 'reuse', record } : { action: 'repair', record };
}

/**
 * Delete only a CNAME that carries our marker for this owner and points at our tunnel, or the record the
 * ledger adopted (by id: it predates us and has no marker, but the meta-supervisor took it over).
 */
export function planDeleteCname(input: {
  hostname: string;
  owner: string;
  tunnelTarget: string;
  existing: DnsRecord[];
  adoptedRecordId?: string | null;
}): DeleteCnamePlan {
  const records = sameName(input.existing, input.hostname);
  if (records.length === 0) return { action: 'absent' };
  const deletable = records.find((record) => {
    const ownership = classifyRecord(record, input.tunnelTarget);
    if (ownership.kind === 'ours') return ownership.owner === input.owner;
    const adopted = input.adoptedRecordId !== undefined && input.adoptedRecordId !== null && record.id === input.adoptedRecordId;
    return adopted && ownership.kind === 'foreign' && record.type === 'CNAME' && record.content.toLowerCase() === input.tunnelTarget.toLowerCase();
  });
  if (deletable !== undefined) return { action: 'delete', record: deletable };
  const ownedByOther = records.map((record) => classifyRecord(record, input.tunnelTarget)).find((ownership) => ownership.kind === 'ours');
  return ownedByOther?.kind === 'ours'
    ? { action: 'refuse', reason: 'other-owner', conflicting: records, owner: ownedByOther.owner }
    : { action: 'refuse', reason: 'foreign', conflicting: records };
}
