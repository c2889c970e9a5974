import { TunnelManagerError } from '../errors.ts';
import { sameHostname, toHostname, type Hostname } from '../hostname.ts';
import type { DnsRecord } from './cloudflare-types.ts';
import type { DnsProvider } from './dns-provider.ts';
import { classifyRecord, formatOwnershipComment, ownershipTags, type RecordOwnership } from './ownership-marker.ts';
import { recordExistsError, recordNotOwnedError } from './record-errors.ts';
import { planDeleteCname, planEnsureCname, type AcceptedPlan, type EnsureCnamePlan } from './record-plan.ts';
import { withRetries, type RetryPolicyOptions } from './retry-policy.ts';

/**
 * The registry (external-dns's term): ownership around any provider. It reads who owns a record (our marker,
 * ownership-marker.ts), writes our marker on every record it creates, and carries out the plan (record-plan.ts)
 * through the provider's plain CRUD (dns-provider.ts). Requests, deletes, adoption, `recover`, the orphan scan and
 * the restore check all ask it, so "ours" means one thing everywhere.
 *
 * Each operation is re-run whole on a transient failure (retry-policy.ts), so a retry looks again at what the
 * failed attempt may have done (a create whose answer was lost) instead of repeating a write blindly.
 */

export interface EnsureCnameInput {
  zoneId: string;
  hostname: string;
  owner: string;
  /** The zone's plan (from the ZoneDirectory); tags are added only on paid plans. Default: no tags. */
  zonePlan?: string | null;
  /**
   * Called right before a create is sent (each time). A create whose answer is lost may still have taken effect, so
   * a caller that must be able to undo it records its intent here, durably, before the request leaves.
   */
  beforeCreate?: () => void;
}

export interface EnsureCnameResult {
  record: DnsRecord;
  /** True when this call created the record (a rollback may delete it); false when it reused ours. */
  created: boolean;
}

export interface DeleteCnameInput {
  zoneId: string;
  hostname: string;
  owner: string;
  /** The record id the ledger adopted (adopted routes have no marker); lets the owner delete that one record. */
  adoptedRecordId?: string | null;
}

export interface DeleteCnameResult {
  /** False when there was nothing to delete. */
  deleted: boolean;
  record?: DnsRecord;
}

export interface OwnershipRegistry {
  /** `<tunnel-id>.cfargotunnel.com`: a record is ours only if it points there. */
  readonly tunnelTarget: string;
  /** Who a record belongs to, as far as Tunnel Manager is concerned. */
  ownership(record: DnsRecord): RecordOwnership;
  /** Every record (any type) named exactly `name`. */
  findRecords(zoneId: string, name: string): Promise<DnsRecord[]>;
  /** Every CNAME of the zone that points at our tunnel, marked or not. */
  findTunnelCnames(zoneId: string): Promise<DnsRecord[]>;
  /** Looks at the name once and answers the plan: what making it `owner`'s CNAME takes, or the refusal. */
  planCname(input: { zoneId: string; hostname: string; owner: string }): Promise<EnsureCnamePlan>;
  /**
   * Carries out a plan made earlier (by the request): its first attempt trusts the plan, and re-checks only the
   * race (a create answered "exists" looks again and takes the record only if it is ours); a retry after a
   * transient failure plans afresh, since the failed attempt may have changed the name.
   */
  carryOut(input: EnsureCnameInput, plan: AcceptedPlan): Promise<EnsureCnameResult>;
  /** Plans and carries out in one go (no plan at hand: a saga restored from an older version, tests). */
  ensureCname(input: EnsureCnameInput): Promise<EnsureCnameResult>;
  /** Deletes the name's record if it is `owner`'s (or the one the ledger adopted); refuses anyone else's. */
  deleteOwnedCname(input: DeleteCnameInput): Promise<DeleteCnameResult>;
}

export function createOwnershipRegistry(provider: DnsProvider, options: { tunnelTarget: string; retry?: RetryPolicyOptions }): OwnershipRegistry {
  const { tunnelTarget } = options;
  const retrying = <T>(operation: (attempt: number) => Promise<T>) => withRetries(operation, options.retry);

  async function freshPlan(input: { zoneId: string; hostname: Hostname; owner: string }): Promise<EnsureCnamePlan> {
    const existing = await provider.listRecords(input.zoneId, { name: input.hostname });
    return planEnsureCname({ hostname: input.hostname, owner: input.owner, tunnelTarget, existing });
  }

  /** Creates our marked CNAME; a name taken meanwhile is looked at again and taken only if it is ours. */
  async function create(input: EnsureCnameInput, hostname: Hostname): Promise<EnsureCnameResult> {
    input.beforeCreate?.();
    try {
      const record = await provider.createRecord(input.zoneId, {
        type: 'CNAME',
        name: hostname,
        content: tunnelTarget,
        proxied: true,
        ttl: 1,
        comment: formatOwnershipComment(input.owner),
        tags: ownershipTags(input.owner, input.zonePlan ?? null),
      });
      return { record, created: true };
    } catch (error) {
      if (!(error instanceof TunnelManagerError && error.code === 'RECORD_EXISTS')) throw error;
      const again = await freshPlan({ zoneId: input.zoneId, hostname, owner: input.owner });
      if (again.action === 'reuse') return { record: again.record, created: true };
      throw error;
    }
  }

  /** One attempt at a plan; `sent.create` survives attempts: a later one that finds our record knows this call made it. */
  async function apply(input: EnsureCnameInput, hostname: Hostname, plan: EnsureCnamePlan, sent: { create: boolean }): Promise<EnsureCnameResult> {
    switch (plan.action) {
      case 'reuse':
        return { record: plan.record, created: sent.create };
      case 'repair':
        return { record: await provider.updateRecord(plan.record, { proxied: true, ttl: 1 }), created: sent.create };
      case 'refuse':
        throw recordExistsError(plan, hostname, input.zoneId);
      case 'create':
        sent.create = true;
        return create(input, hostname);
    }
  }

  return {
    tunnelTarget,
    ownership: (record) => classifyRecord(record, tunnelTarget),
    findRecords: (zoneId, name) => retrying(() => provider.listRecords(zoneId, { name: toHostname(name) })),
    findTunnelCnames: async (zoneId) => {
      const records = await retrying(() => provider.listRecords(zoneId, { type: 'CNAME', content: tunnelTarget }));
      return records.filter((record) => record.type === 'CNAME' && sameHostname(record.content, tunnelTarget));
    },
    planCname: (input) => retrying(() => freshPlan({ ...input, hostname: toHostname(input.hostname) })),
    carryOut: (input, plan) => {
      const hostname = toHostname(input.hostname);
      const sent = { create: false };
      return retrying(async (attempt) => apply(input, hostname, attempt === 1 ? plan : await freshPlan({ ...input, hostname }), sent));
    },
    ensureCname: (input) => {
      const hostname = toHostname(input.hostname);
      const sent = { create: false };
      return retrying(async () => apply(input, hostname, await freshPlan({ ...input, hostname }), sent));
    },
    deleteOwnedCname: (input) => {
      const hostname = toHostname(input.hostname);
      // Set once a delete was sent: a later attempt that finds nothing knows this call removed it.
      let deleteSent: DnsRecord | undefined;
      return retrying(async () => {
        const existing = await provider.listRecords(input.zoneId, { name: hostname });
        const plan = planDeleteCname({ hostname, owner: input.owner, tunnelTarget, existing, adoptedRecordId: input.adoptedRecordId ?? null });
        if (plan.action === 'absent') return deleteSent === undefined ? { deleted: false } : { deleted: true, record: deleteSent };
        if (plan.action === 'refuse') throw recordNotOwnedError(plan, hostname, input.zoneId, input.owner);
        deleteSent = plan.record;
        // `absent`: gone meanwhile (e.g. an earlier attempt whose answer was lost): the goal is reached.
        await provider.deleteRecord(plan.record);
        return { deleted: true, record: plan.record };
      });
    },
  };
}
