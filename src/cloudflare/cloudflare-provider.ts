import type { CloudflareClient as Cloudflare } from './client.ts';
import { TunnelManagerError } from '../errors.ts';
import { createCloudflareClient } from './client.ts';
import { tunnelTargetFor, type CloudflareZone, type DnsRecord } from './cloudflare-types.ts';
import { createProxiedCname, deleteRecordById, findCnamesPointingAt, findRecordsByName, reproxyRecord } from './dns-records.ts';
import { mapCloudflareError, type CloudflareCallContext } from './error-mapping.ts';
import { classifyRecord, formatOwnershipComment, ownershipTags } from './ownership-marker.ts';
import { RateLimiter } from './rate-limiter.ts';
import { planDeleteCname, planEnsureCname, type RefusePlan } from './record-plan.ts';
import { withRetries, type RetryPolicyOptions } from './retry-policy.ts';
import { fetchTunnelConfiguration, replaceTunnelConfiguration, type TunnelConfiguration, type TunnelConfigurationInput } from './tunnel-configuration.ts';
import { fetchAccountZones } from './zones.ts';

/**
 * The provider (external-dns's term): Tunnel Manager's one door to Cloudflare. It carries out the
 * plan (record-plan.ts) under the ownership rules (ownership-marker.ts), maps every failure
 * (error-mapping.ts), re-runs whole operations on transient failures (retry-policy.ts) and sends every
 * request through the shared rate limiter.
 */

export interface CloudflareProviderOptions {
  /** Default https://api.cloudflare.com/client/v4. */
  apiBaseUrl?: string;
  apiToken: string;
  accountId: string;
  tunnelId: string;
  /** Shared by every client of the process; default a new one (1,000 requests per 5 minutes). */
  rateLimiter?: RateLimiter;
  retry?: RetryPolicyOptions;
  /** per_page for lists: zones 5–50 (default 50), records (default 100). */
  pageSize?: { zones?: number; records?: number };
  timeoutMs?: number;
  /** Hears how each HTTP request to the API ended (metrics). */
  onResponse?: (method: string, status: number | null, durationMs: number) => void;
}

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

export interface CloudflareProvider {
  readonly accountId: string;
  readonly tunnelId: string;
  /** `<tunnel-id>.cfargotunnel.com` */
  readonly tunnelTarget: string;
  listZones(): Promise<CloudflareZone[]>;
  /** Every record (any type) named exactly `name`. */
  findRecords(zoneId: string, name: string): Promise<DnsRecord[]>;
  /** Every CNAME of the zone that points at our tunnel, marked or not. */
  findTunnelCnames(zoneId: string): Promise<DnsRecord[]>;
  ensureCname(input: EnsureCnameInput): Promise<EnsureCnameResult>;
  deleteOwnedCname(input: DeleteCnameInput): Promise<DeleteCnameResult>;
  getTunnelConfiguration(): Promise<TunnelConfiguration>;
  putTunnelConfiguration(config: TunnelConfigurationInput): Promise<TunnelConfiguration>;
}

function describeRecords(records: DnsRecord[]): string {
  return records
    .map((record) => {
      const owner = classifyRecord(record, '');
      const marker = owner.kind === 'foreign' ? 'no Tunnel Manager marker' : `marked for ${owner.owner}`;
      return `${record.type} ${record.name} → ${record.content} (id ${record.id}, ${marker}${record.comment ? `, comment ${JSON.stringify(record.comment)}` : ''})`;
    })
    .join('; ');
}

function recordSummaries(records: DnsRecord[]) {
  return records.map((record) => ({ id: record.id, type: record.type, name: record.name, content: record.content, comment: record.comment }));
}

/**
 * The one refusal of a name that is not ours, used by the pre-check of a request and by the DNS step alike (the
 * rule itself is the plan's, in record-plan.ts).
 */
export function recordExistsError(plan: RefusePlan, hostname: string, zoneId: string): TunnelManagerError {
  const messages: Record<RefusePlan['reason'], { message: string; fix: string }> = {
    'other-owner': {
      message: `${hostname} already exists in Cloudflare and belongs to project ${plan.owner}: ${describeRecords(plan.conflicting)}.`,
      fix: `Pick another hostname, or ask project ${plan.owner} (or the meta-supervisor) to release ${hostname} first.`,
    },
    'other-tunnel': {
      message: `${hostname} already exists in Cloudflare and belongs to another tunnel of this account (${plan.tunnelTarget}): the Tunnel Manager of that tunnel published it for its project ${plan.owner}. ${describeRecords(plan.conflicting)}.`,
      fix: `Pick another hostname. ${hostname} is served by the other machine's tunnel; only the Tunnel Manager that runs ${plan.tunnelTarget} can release it.`,
    },
    foreign: {
      message: `${hostname} already exists in Cloudflare and was not created by Tunnel Manager: ${describeRecords(plan.conflicting)}.`,
      fix: `Pick another hostname. Tunnel Manager never overwrites a record it does not own; if ${hostname} should be routed through the tunnel, the meta-supervisor can remove or adopt the existing record in the Cloudflare dashboard first.`,
    },
  };
  const { message, fix } = messages[plan.reason];
  return new TunnelManagerError({
    code: 'RECORD_EXISTS',
    message,
    fix,
    details: { hostname, zoneId, reason: plan.reason, existing: recordSummaries(plan.conflicting), ...(plan.owner ? { owner: plan.owner } : {}), ...(plan.tunnelTarget ? { tunnelTarget: plan.tunnelTarget } : {}) },
  });
}

export function createCloudflareProvider(options: CloudflareProviderOptions): CloudflareProvider {
  const rateLimiter = options.rateLimiter ?? new RateLimiter();
  const client: Cloudflare = createCloudflareClient({
    apiToken: options.apiToken,
    rateLimiter,
    ...(options.apiBaseUrl !== undefined ? { apiBaseUrl: options.apiBaseUrl } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.onResponse ? { onResponse: options.onResponse } : {}),
  });
  const tunnelTarget = tunnelTargetFor(options.tunnelId);
  const zonesPerPage = options.pageSize?.zones ?? 50;
  const recordsPerPage = options.pageSize?.records ?? 100;

  /** One API call (or a few), mapped. */
  async function call<T>(context: CloudflareCallContext, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw mapCloudflareError(error, context);
    }
  }

  const retrying = <T>(operation: (attempt: number) => Promise<T>) => withRetries(operation, options.retry);

  function findRecords(zoneId: string, name: string): Promise<DnsRecord[]> {
    return call({ operation: `looking up the records named ${name}`, zoneId, hostname: name }, () =>
      findRecordsByName(client, zoneId, name, recordsPerPage),
    );
  }

  return {
    accountId: options.accountId,
    tunnelId: options.tunnelId,
    tunnelTarget,

    listZones: () =>
      retrying(() => call({ operation: 'listing the zones of the account' }, () => fetchAccountZones(client, options.accountId, zonesPerPage))),

    findRecords: (zoneId, name) => retrying(() => findRecords(zoneId, name)),

    findTunnelCnames: (zoneId) =>
      retrying(() =>
        call({ operation: `listing the CNAMEs that point at ${tunnelTarget}`, zoneId }, () => findCnamesPointingAt(client, zoneId, tunnelTarget, recordsPerPage)),
      ),

    async ensureCname(input) {
      const hostname = input.hostname.toLowerCase();
      const comment = formatOwnershipComment(input.owner);
      const tags = ownershipTags(input.owner, input.zonePlan ?? null);
      // Set once a create was sent: a later attempt that finds our record knows this call made it.
      let createSent = false;
      return retrying(async () => {
        const existing = await findRecords(input.zoneId, hostname);
        const plan = planEnsureCname({ hostname, owner: input.owner, tunnelTarget, existing });
        switch (plan.action) {
          case 'reuse':
            return { record: plan.record, created: createSent };
          case 'repair':
            return {
              record: await call({ operation: `re-proxying our CNAME ${hostname}`, zoneId: input.zoneId, hostname }, () =>
                reproxyRecord(client, input.zoneId, plan.record.id),
              ),
              created: createSent,
            };
          case 'refuse':
            throw recordExistsError(plan, hostname, input.zoneId);
          case 'create': {
            input.beforeCreate?.();
            createSent = true;
            try {
              const record = await call({ operation: `creating the CNAME ${hostname}`, zoneId: input.zoneId, hostname }, () =>
                createProxiedCname(client, { zoneId: input.zoneId, hostname, target: tunnelTarget, comment, tags }),
              );
              return { record, created: true };
            } catch (error) {
              // Someone created that name between our lookup and our create: look again, reuse it only if it is ours.
              if (error instanceof TunnelManagerError && error.code === 'RECORD_EXISTS') {
                const again = planEnsureCname({ hostname, owner: input.owner, tunnelTarget, existing: await findRecords(input.zoneId, hostname) });
                if (again.action === 'reuse') return { record: again.record, created: true };
              }
              throw error;
            }
          }
        }
      });
    },

    async deleteOwnedCname(input) {
      const hostname = input.hostname.toLowerCase();
      // Set once a delete was sent: a later attempt that finds nothing knows this call removed it.
      let deleteSent: DnsRecord | undefined;
      return retrying(async () => {
        const existing = await findRecords(input.zoneId, hostname);
        const plan = planDeleteCname({ hostname, owner: input.owner, tunnelTarget, existing, adoptedRecordId: input.adoptedRecordId ?? null });
        if (plan.action === 'absent') return deleteSent === undefined ? { deleted: false } : { deleted: true, record: deleteSent };
        if (plan.action === 'refuse') {
          throw new TunnelManagerError({
            code: 'RECORD_NOT_OWNED',
            message:
              plan.reason === 'other-owner'
                ? `${hostname} in Cloudflare belongs to project ${plan.owner}, not ${input.owner}: ${describeRecords(plan.conflicting)}. Nothing was deleted.`
                : plan.reason === 'other-tunnel'
                  ? `${hostname} in Cloudflare belongs to another tunnel of this account (${plan.tunnelTarget}, marked for project ${plan.owner} by the Tunnel Manager that runs it), not to this one: ${describeRecords(plan.conflicting)}. Nothing was deleted.`
                  : `${hostname} in Cloudflare was not created by Tunnel Manager for ${input.owner}: ${describeRecords(plan.conflicting)}. Nothing was deleted.`,
            fix:
              plan.reason === 'other-owner'
                ? `Only project ${plan.owner} (or the meta-supervisor acting as it) can delete ${hostname}.`
                : plan.reason === 'other-tunnel'
                  ? `Delete it through the Tunnel Manager of the machine whose tunnel is ${plan.tunnelTarget}.`
                  : `Tunnel Manager deletes only records it created. If ${hostname} must go, remove it by hand in the Cloudflare dashboard (DNS → Records) after checking who uses it.`,
            details: { hostname, zoneId: input.zoneId, reason: plan.reason, existing: recordSummaries(plan.conflicting), ...(plan.owner ? { owner: plan.owner } : {}) },
          });
        }
        deleteSent = plan.record;
        try {
          await call({ operation: `deleting the CNAME ${hostname}`, zoneId: input.zoneId, hostname }, () => deleteRecordById(client, input.zoneId, plan.record.id));
        } catch (error) {
          // Gone meanwhile (81044, e.g. an earlier attempt whose answer was lost): the goal is reached.
          const gone = error instanceof TunnelManagerError && (error.details.cloudflareErrors as { code: number }[] | undefined)?.some((e) => e.code === 81044);
          if (!gone) throw error;
        }
        return { deleted: true, record: plan.record };
      });
    },

    getTunnelConfiguration: () =>
      retrying(() =>
        call({ operation: `reading the configuration of tunnel ${options.tunnelId}` }, () => fetchTunnelConfiguration(client, options.accountId, options.tunnelId)),
      ),

    putTunnelConfiguration: (config) =>
      retrying(() =>
        call({ operation: `replacing the configuration of tunnel ${options.tunnelId}` }, () =>
          replaceTunnelConfiguration(client, options.accountId, options.tunnelId, config),
        ),
      ),
  };
}
