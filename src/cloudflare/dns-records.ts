import type { CloudflareClient as Cloudflare } from './client.ts';
import type { RecordResponse } from 'cloudflare/resources/dns/records';
import { collectAllPages } from './collect-pages.ts';
import type { DnsRecord } from './cloudflare-types.ts';

/**
 * The DNS-records calls of the provider: find by name, list our tunnel's CNAMEs, create, repair, delete.
 * Thin over the SDK; errors are raw SDK errors (the provider maps them and decides on retries).
 */

export interface RecordPageSize {
  /** per_page for DNS record lists; Cloudflare allows 5 to 5,000,000, 100 by default. */
  records: number;
}

export function toDnsRecord(zoneId: string, record: RecordResponse): DnsRecord {
  const raw = record as unknown as Record<string, unknown>;
  return {
    id: String(raw.id),
    zoneId,
    name: String(raw.name).toLowerCase(),
    type: String(raw.type),
    content: String(raw.content ?? ''),
    proxied: raw.proxied === true,
    ttl: typeof raw.ttl === 'number' ? raw.ttl : 1,
    comment: typeof raw.comment === 'string' && raw.comment !== '' ? raw.comment : null,
    tags: Array.isArray(raw.tags) ? (raw.tags as unknown[]).map(String) : [],
  };
}

/** Every record (any type) whose name is exactly `name`. */
export async function findRecordsByName(client: Cloudflare, zoneId: string, name: string, perPage: number): Promise<DnsRecord[]> {
  const records = await collectAllPages(client.dns.records.list({ zone_id: zoneId, name: { exact: name.toLowerCase() }, per_page: perPage }));
  return records.map((record) => toDnsRecord(zoneId, record));
}

/** Every CNAME of the zone that points at `target` (our tunnel). */
export async function findCnamesPointingAt(client: Cloudflare, zoneId: string, target: string, perPage: number): Promise<DnsRecord[]> {
  const records = await collectAllPages(client.dns.records.list({ zone_id: zoneId, type: 'CNAME', content: { exact: target }, per_page: perPage }));
  return records
    .map((record) => toDnsRecord(zoneId, record))
    .filter((record) => record.type === 'CNAME' && record.content.toLowerCase() === target.toLowerCase());
}

/** Every record of the zone (used for audits and tests). */
export async function listAllRecords(client: Cloudflare, zoneId: string, perPage: number): Promise<DnsRecord[]> {
  const records = await collectAllPages(client.dns.records.list({ zone_id: zoneId, per_page: perPage }));
  return records.map((record) => toDnsRecord(zoneId, record));
}

export async function createProxiedCname(
  client: Cloudflare,
  input: { zoneId: string; hostname: string; target: string; comment: string; tags: string[] },
): Promise<DnsRecord> {
  const created = await client.dns.records.create({
    zone_id: input.zoneId,
    type: 'CNAME',
    name: input.hostname.toLowerCase(),
    content: input.target,
    proxied: true,
    ttl: 1,
    comment: input.comment,
    ...(input.tags.length > 0 ? { tags: input.tags } : {}),
  });
  return toDnsRecord(input.zoneId, created);
}

/** Puts one of our records back as we made it: proxied, TTL auto. */
export async function reproxyRecord(client: Cloudflare, zoneId: string, recordId: string): Promise<DnsRecord> {
  const patched = await client.dns.records.edit(recordId, { zone_id: zoneId, type: 'CNAME', proxied: true, ttl: 1 } as Parameters<Cloudflare['dns']['records']['edit']>[1]);
  return toDnsRecord(zoneId, patched);
}

export async function deleteRecordById(client: Cloudflare, zoneId: string, recordId: string): Promise<void> {
  await client.dns.records.delete(recordId, { zone_id: zoneId });
}
