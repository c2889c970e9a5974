import { apiFailures } from '../api-envelope.ts';
import type { EmulatedRecord } from '../emulator-state.ts';
import { combine, paginate, RECORD_PAGE_LIMITS, sortBy, stringFilters, type Predicate } from '../list-query.ts';
import { checkNameConflicts, validateRecordInput } from '../record-validation.ts';
import { cloudflareTimestamp, newIdentifier } from '../state-store.ts';
import { bodyObject, zoneFromPath, type RouteAnswer, type RouteContext, type RouteHandler } from './route-context.ts';

/** `/zones/:zone/dns_records` (list with filters and pagination, create) and `/zones/:zone/dns_records/:record` (get, patch, put, delete). */

const PROXIABLE_TYPES = new Set(['A', 'AAAA', 'CNAME']);

export function recordShape(record: EmulatedRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    type: record.type,
    content: record.content,
    proxiable: PROXIABLE_TYPES.has(record.type),
    proxied: record.proxied,
    ttl: record.ttl,
    settings: record.type === 'CNAME' ? { flatten_cname: false } : {},
    meta: {},
    comment: record.comment,
    tags: record.tags,
    created_on: record.createdOn,
    modified_on: record.modifiedOn,
  };
}

function tagFilters(query: URLSearchParams): Predicate<EmulatedRecord>[] {
  const predicates: Predicate<EmulatedRecord>[] = [];
  const split = (tag: string): [string, string] => {
    const at = tag.indexOf(':');
    return at < 0 ? [tag.toLowerCase(), ''] : [tag.slice(0, at).toLowerCase(), tag.slice(at + 1).toLowerCase()];
  };
  const valueOf = (record: EmulatedRecord, name: string) => {
    const tag = record.tags.map(split).find(([tagName]) => tagName === name);
    return tag === undefined ? undefined : tag[1];
  };
  const present = query.get('tag.present');
  if (present !== null) predicates.push((r) => valueOf(r, present.toLowerCase()) !== undefined);
  const absent = query.get('tag.absent');
  if (absent !== null) predicates.push((r) => valueOf(r, absent.toLowerCase()) === undefined);
  const operators: [string, (have: string, want: string) => boolean][] = [
    ['tag.exact', (have, want) => have === want],
    ['tag.contains', (have, want) => have.includes(want)],
    ['tag.startswith', (have, want) => have.startsWith(want)],
    ['tag.endswith', (have, want) => have.endsWith(want)],
  ];
  for (const [key, test] of operators) {
    const raw = query.get(key);
    if (raw === null) continue;
    const [name, want] = split(raw);
    predicates.push((r) => {
      const have = valueOf(r, name);
      return have !== undefined && test(have, want);
    });
  }
  return predicates;
}

function listFilter(query: URLSearchParams): Predicate<EmulatedRecord> {
  const fieldPredicates: Predicate<EmulatedRecord>[] = [
    ...stringFilters<EmulatedRecord>(query, 'name', (r) => r.name),
    ...stringFilters<EmulatedRecord>(query, 'content', (r) => r.content),
    ...stringFilters<EmulatedRecord>(query, 'comment', (r) => r.comment),
  ];
  const type = query.get('type');
  if (type !== null) fieldPredicates.push((r) => r.type === type.toUpperCase());
  const proxied = query.get('proxied');
  if (proxied !== null) fieldPredicates.push((r) => r.proxied === (proxied === 'true'));
  const search = query.get('search');
  if (search !== null) {
    const needle = search.toLowerCase();
    fieldPredicates.push((r) => [r.name, r.content, r.comment ?? ''].some((text) => text.toLowerCase().includes(needle)));
  }
  const byFields = combine(fieldPredicates, query.get('match'));
  const byTags = combine(tagFilters(query), query.get('tag_match'));
  return (record) => byFields(record) && byTags(record);
}

function recordFromPath(context: RouteContext): EmulatedRecord {
  const zone = zoneFromPath(context);
  const record = context.store.state.records.find((r) => r.zoneId === zone.id && r.id === context.params.record);
  if (record === undefined) throw apiFailures.recordNotFound();
  return record;
}

export const listRecords: RouteHandler = {
  scope: 'dns:read',
  handle(context) {
    const zone = zoneFromPath(context);
    const inZone = context.store.state.records.filter((r) => r.zoneId === zone.id);
    const sorted = sortBy(
      inZone.filter(listFilter(context.query)),
      context.query,
      { type: (r) => r.type, name: (r) => r.name, content: (r) => r.content, ttl: (r) => r.ttl, proxied: (r) => r.proxied },
      'name',
    );
    const { page, resultInfo } = paginate(sorted, context.query, RECORD_PAGE_LIMITS);
    return { result: page.map(recordShape), resultInfo };
  },
};

export const createRecord: RouteHandler = {
  scope: 'dns:edit',
  handle(context) {
    const zone = zoneFromPath(context);
    const input = validateRecordInput(bodyObject(context), zone);
    const records = context.store.state.records;
    checkNameConflicts(input, records.filter((r) => r.zoneId === zone.id));
    const now = cloudflareTimestamp();
    const record: EmulatedRecord = { id: newIdentifier(), zoneId: zone.id, ...input, createdOn: now, modifiedOn: now };
    records.push(record);
    context.store.changed();
    return { result: recordShape(record) };
  },
};

export const getRecord: RouteHandler = {
  scope: 'dns:read',
  handle(context) {
    return { result: recordShape(recordFromPath(context)) };
  },
};

function replaceRecord(context: RouteContext, merged: Record<string, unknown>): RouteAnswer {
  const existing = recordFromPath(context);
  const zone = zoneFromPath(context);
  const input = validateRecordInput(merged, zone);
  checkNameConflicts(input, context.store.state.records.filter((r) => r.zoneId === zone.id), existing.id);
  Object.assign(existing, input, { modifiedOn: cloudflareTimestamp() });
  context.store.changed();
  return { result: recordShape(existing) };
}

export const patchRecord: RouteHandler = {
  scope: 'dns:edit',
  handle(context) {
    const existing = recordFromPath(context);
    const patch = bodyObject(context);
    const merged: Record<string, unknown> = {
      name: existing.name,
      type: existing.type,
      content: existing.content,
      proxied: existing.proxied,
      ttl: existing.ttl,
      comment: existing.comment,
      tags: existing.tags,
    };
    for (const key of Object.keys(merged)) if (key in patch) merged[key] = patch[key];
    return replaceRecord(context, merged);
  },
};

export const putRecord: RouteHandler = {
  scope: 'dns:edit',
  handle(context) {
    return replaceRecord(context, bodyObject(context));
  },
};

export const deleteRecord: RouteHandler = {
  scope: 'dns:edit',
  handle(context) {
    const existing = recordFromPath(context);
    const records = context.store.state.records;
    records.splice(records.indexOf(existing), 1);
    context.store.changed();
    return { result: { id: existing.id } };
  },
};
