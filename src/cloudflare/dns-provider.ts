import type { RecordResponse } from 'cloudflare/resources/dns/records';
import { z } from 'zod';
import { TunnelManagerError } from '../errors.ts';
import { toHostname } from '../hostname.ts';
import type { CloudflareClient } from './client.ts';
import { collectAllPages } from './collect-pages.ts';
import type { DnsRecord } from './cloudflare-types.ts';
import { mapCloudflareError, type CloudflareCallContext } from './error-mapping.ts';

/**
 * The provider (external-dns's term): plain CRUD over the DNS records of a zone, through the SDK. It knows nothing
 * of owners, markers or plans (ownership-registry.ts wraps it; record-plan.ts decides), and it does not retry: the
 * registry re-runs whole operations, so a retry sees what a failed attempt may have done (retry-policy.ts). Every
 * failure leaves here as the one error shape (error-mapping.ts).
 */

/** Which records a list answers: all of the zone, or those matching every given field exactly. */
export interface RecordFilter {
  name?: string;
  type?: 'CNAME';
  content?: string;
}

/** A record to create (we only ever create proxied CNAMEs, but the provider does not care). */
export interface NewRecord {
  type: 'CNAME';
  name: string;
  content: string;
  proxied: boolean;
  /** 1: automatic. */
  ttl: number;
  comment: string;
  /** Left out of the request when empty (Free zones refuse any tag). */
  tags: string[];
}

export interface DnsProvider {
  listRecords(zoneId: string, filter?: RecordFilter): Promise<DnsRecord[]>;
  createRecord(zoneId: string, record: NewRecord): Promise<DnsRecord>;
  /** Sets `proxied` and `ttl` on an existing CNAME (the rest stays). */
  updateRecord(record: DnsRecord, change: { proxied: boolean; ttl: number }): Promise<DnsRecord>;
  /** `absent`: Cloudflare says the record is not there (81044), e.g. a delete whose answer was lost. */
  deleteRecord(record: DnsRecord): Promise<'deleted' | 'absent'>;
}

/** What we read of a record answer; the SDK types the answer as a union of every record type. */
const recordAnswer = z.object({
  id: z.string(),
  name: z.string(),
  type: z.string(),
  content: z.unknown().optional(),
  proxied: z.boolean().optional(),
  ttl: z.number().optional(),
  comment: z.string().nullable().optional(),
  tags: z.array(z.unknown()).optional(),
});

/** A record as Cloudflare answered it, its name made a `Hostname` (Cloudflare keeps the case it was given). */
export function toDnsRecord(zoneId: string, answer: RecordResponse): DnsRecord {
  const raw = recordAnswer.parse(answer);
  return {
    id: raw.id,
    zoneId,
    name: toHostname(raw.name),
    type: raw.type,
    content: typeof raw.content === 'string' ? raw.content : '',
    proxied: raw.proxied === true,
    ttl: raw.ttl ?? 1,
    comment: typeof raw.comment === 'string' && raw.comment !== '' ? raw.comment : null,
    tags: (raw.tags ?? []).map(String),
  };
}

function describeFilter(filter: RecordFilter): string {
  if (filter.name !== undefined) return `looking up the records named ${filter.name}`;
  if (filter.content !== undefined) return `listing the CNAMEs that point at ${filter.content}`;
  return 'listing the records of the zone';
}

/** Cloudflare's 81044: the record is not there (any more). */
function isRecordGone(error: unknown): boolean {
  const items: unknown = error instanceof TunnelManagerError ? error.details.cloudflareErrors : undefined;
  return Array.isArray(items) && items.some((item: unknown) => typeof item === 'object' && item !== null && Reflect.get(item, 'code') === 81044);
}

export function createDnsProvider(client: CloudflareClient, options: { recordsPerPage?: number } = {}): DnsProvider {
  const perPage = options.recordsPerPage ?? 100;

  async function call<T>(context: CloudflareCallContext, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw mapCloudflareError(error, context);
    }
  }

  return {
    async listRecords(zoneId, filter = {}) {
      const context = { operation: describeFilter(filter), zoneId, ...(filter.name !== undefined ? { hostname: filter.name } : {}) };
      const answers = await call(context, () =>
        collectAllPages(
          client.dns.records.list({
            zone_id: zoneId,
            per_page: perPage,
            ...(filter.name !== undefined ? { name: { exact: filter.name } } : {}),
            ...(filter.type !== undefined ? { type: filter.type } : {}),
            ...(filter.content !== undefined ? { content: { exact: filter.content } } : {}),
          }),
        ),
      );
      return answers.map((answer) => toDnsRecord(zoneId, answer));
    },

    async createRecord(zoneId, record) {
      const { tags, ...fields } = record;
      const answer = await call({ operation: `creating the ${record.type} ${record.name}`, zoneId, hostname: record.name }, () =>
        client.dns.records.create({ zone_id: zoneId, ...fields, ...(tags.length > 0 ? { tags } : {}) }),
      );
      return toDnsRecord(zoneId, answer);
    },

    async updateRecord(record, change) {
      const answer = await call({ operation: `re-proxying our CNAME ${record.name}`, zoneId: record.zoneId, hostname: record.name }, () =>
        client.dns.records.edit(record.id, { zone_id: record.zoneId, type: 'CNAME', name: record.name, ...change }),
      );
      return toDnsRecord(record.zoneId, answer);
    },

    async deleteRecord(record) {
      try {
        await call({ operation: `deleting the CNAME ${record.name}`, zoneId: record.zoneId, hostname: record.name }, () =>
          client.dns.records.delete(record.id, { zone_id: record.zoneId }),
        );
        return 'deleted';
      } catch (error) {
        if (isRecordGone(error)) return 'absent';
        throw error;
      }
    },
  };
}
