import { TunnelManagerError } from '../errors.ts';
import type { DnsRecord } from './cloudflare-types.ts';
import { classifyRecord } from './ownership-marker.ts';
import type { RefusePlan } from './record-plan.ts';

/** The refusals a plan makes, as the one error shape: a name that is not ours to create, or not ours to delete. */

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

/** The one refusal of a name that is not ours to create, for the request's check and the saga's race alike. */
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

/** The refusal of a delete: the record under the name is not `owner`'s. Nothing was deleted. */
export function recordNotOwnedError(plan: RefusePlan, hostname: string, zoneId: string, owner: string): TunnelManagerError {
  const records = describeRecords(plan.conflicting);
  const texts: Record<RefusePlan['reason'], { message: string; fix: string }> = {
    'other-owner': {
      message: `${hostname} in Cloudflare belongs to project ${plan.owner}, not ${owner}: ${records}. Nothing was deleted.`,
      fix: `Only project ${plan.owner} (or the meta-supervisor acting as it) can delete ${hostname}.`,
    },
    'other-tunnel': {
      message: `${hostname} in Cloudflare belongs to another tunnel of this account (${plan.tunnelTarget}, marked for project ${plan.owner} by the Tunnel Manager that runs it), not to this one: ${records}. Nothing was deleted.`,
      fix: `Delete it through the Tunnel Manager of the machine whose tunnel is ${plan.tunnelTarget}.`,
    },
    foreign: {
      message: `${hostname} in Cloudflare was not created by Tunnel Manager for ${owner}: ${records}. Nothing was deleted.`,
      fix: `Tunnel Manager deletes only records it created. If ${hostname} must go, remove it by hand in the Cloudflare dashboard (DNS → Records) after checking who uses it.`,
    },
  };
  return new TunnelManagerError({
    code: 'RECORD_NOT_OWNED',
    ...texts[plan.reason],
    details: { hostname, zoneId, reason: plan.reason, existing: recordSummaries(plan.conflicting), ...(plan.owner ? { owner: plan.owner } : {}) },
  });
}
