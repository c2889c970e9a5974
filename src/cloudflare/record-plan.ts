import { z } from 'zod';
import { sameHostname, toHostname, type Hostname } from '../hostname.ts';
import type { DnsRecord } from './cloudflare-types.ts';
import { classifyRecord } from './ownership-marker.ts';

/**
 * The plan (external-dns's term): given what Cloudflare holds under a name, who owns each record (the registry's
 * marker, read by ownership-marker.ts) and what we want, the change to make: create, reuse, repair, delete, or a
 * refusal. Pure: no I/O, so it is a table test (test/unit/cloudflare/record-plan.test.ts); the registry carries
 * it out through the provider.
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

/** A plan that is not a refusal: what a request hands to its saga's DNS step. */
export type AcceptedPlan = Exclude<EnsureCnamePlan, RefusePlan>;

const recordShape = z.object({
  id: z.string(),
  zoneId: z.string(),
  name: z.string().transform(toHostname),
  type: z.string(),
  content: z.string(),
  proxied: z.boolean(),
  ttl: z.number(),
  comment: z.string().nullable(),
  tags: z.array(z.string()),
});
const acceptedPlanShape = z.union([
  z.object({ action: z.literal('create') }),
  z.object({ action: z.enum(['reuse', 'repair']), record: recordShape }),
]);

/**
 * The plan a saga carries, read back from its persisted state (an outside value): the plan, or null when there is
 * none (a saga started by an older version) or it is not one, and the step must plan afresh.
 */
export function acceptedPlanOf(value: unknown): AcceptedPlan | null {
  const parsed = acceptedPlanShape.safeParse(value);
  return parsed.success ? parsed.data : null;
}

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

/** Names are compared as they are: both sides are `Hostname`s, normalised where they entered. */
function sameName(records: DnsRecord[], hostname: Hostname): DnsRecord[] {
  return records.filter((record) => record.name === hostname);
}

function isOursFor(record: DnsRecord, owner: string, tunnelTarget: string): boolean {
  const ownership = classifyRecord(record, tunnelTarget);
  return ownership.kind === 'ours' && ownership.owner === owner;
}

export function planEnsureCname(input: { hostname: Hostname; owner: string; tunnelTarget: string; existing: DnsRecord[] }): EnsureCnamePlan {
  const records = sameName(input.existing, input.hostname);
  const others = records.filter((record) => !isOursFor(record, input.owner, input.tunnelTarget));
  if (others.length > 0) return refusalOf(others, input.tunnelTarget);
  const [record] = records;
  if (record === undefined) return { action: 'create' };
  return record.proxied ? { action: 'reuse', record } : { action: 'repair', record };
}

/** The record the ledger adopted: it predates us (no marker) and is a CNAME to our tunnel, with the adopted id. */
function isAdopted(record: DnsRecord, tunnelTarget: string, adoptedRecordId: string | null | undefined): boolean {
  if (adoptedRecordId === undefined || adoptedRecordId === null || record.id !== adoptedRecordId) return false;
  return classifyRecord(record, tunnelTarget).kind === 'foreign' && record.type === 'CNAME' && sameHostname(record.content, tunnelTarget);
}

/**
 * Delete only a CNAME that carries our marker for this owner and points at our tunnel, or the record the
 * ledger adopted (by id: it predates us and has no marker, but the meta-supervisor took it over).
 */
export function planDeleteCname(input: {
  hostname: Hostname;
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
    return isAdopted(record, input.tunnelTarget, input.adoptedRecordId);
  });
  if (deletable !== undefined) return { action: 'delete', record: deletable };
  return refusalOf(records, input.tunnelTarget);
}
