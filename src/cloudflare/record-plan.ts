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
  | RefusePlan;

export type DeleteCnamePlan = { action: 'delete'; record: DnsRecord } | { action: 'absent' } | RefusePlan;

/**
 * Why a name cannot be ours: `other-owner`, our marker for another project on our tunnel; `other-tunnel`, the
 * marker of a Tunnel Manager (another VM's, one manager per tunnel) on a record pointing at another tunnel of the
 * account; `foreign`, no marker at all.
 */
export type RefusePlan = { action: 'refuse'; reason: 'foreign' | 'other-owner' | 'other-tunnel'; conflicting: DnsRecord[]; owner?: string; tunnelTarget?: string };

/** The refusal that the records under a name make, most specific reason first. */
function refusalOf(records: DnsRecord[], tunnelTarget: string): RefusePlan {
  const classified = records.map((record) => ({ record, ownership: classifyRecord(record, tunnelTarget) }));
  const otherOwner = classified.find(({ ownership }) => ownership.kind === 'ours');
  if (otherOwner?.ownership.kind === 'ours') return { action: 'refuse', reason: 'other-owner', conflicting: records, owner: otherOwner.ownership.owner };
  const otherTunnel = classified.find(({ ownership }) => ownership.kind === 'marked-elsewhere');
  if (otherTunnel?.ownership.kind === 'marked-elsewhere') {
    return { action: 'refuse', reason: 'other-tunnel', conflicting: records, owner: otherTunnel.ownership.owner, tunnelTarget: otherTunnel.record.content };
  }
  return { action: 'refuse', reason: 'foreign', conflicting: records };
}

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
  if (others.length > 0) return refusalOf(others, input.tunnelTarget);
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
  return refusalOf(records, input.tunnelTarget);
}
