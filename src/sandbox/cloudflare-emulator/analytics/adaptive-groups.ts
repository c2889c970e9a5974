import { GraphQLError } from 'graphql';
import type { TrafficBucket } from '../../traffic-log.ts';
import type { DatasetLimits } from './analytics-limits.ts';
import { isJsonObject } from '../../../json-guards.ts';

/**
 * `httpRequestsAdaptiveGroups` over the edge's minute buckets: the filter (time range checked against the plan's
 * limits, hosts, statuses, AND/OR), GROUP BY the dimensions the query selected, orderBy, limit. Errors are the node's
 * GraphQL errors (`extensions.code`, `timestamp`), so only this node answers null.
 */

export const DIMENSIONS = ['clientRequestHTTPHost', 'datetimeHour', 'datetimeFifteenMinutes', 'datetimeFiveMinutes', 'datetimeMinute', 'date', 'edgeResponseStatus'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
export const isDimension = (name: string): name is Dimension => DIMENSIONS.some((dimension) => dimension === name);

export interface AdaptiveGroup {
  count: number;
  sum: { edgeResponseBytes: number; visits: number };
  /** The edge counts every request: no sampling. */
  avg: { sampleInterval: 1 };
  dimensions: Partial<Record<Dimension, string | number>>;
}

export interface GroupsQuery {
  filter: unknown;
  limit: unknown;
  orderBy: unknown;
  /** The dimension fields the query selected: the GROUP BY. */
  dimensions: ReadonlySet<Dimension>;
}

/** A node error as Cloudflare shapes them. */
export function nodeError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, timestamp: new Date().toISOString() } });
}

const badRequest = (message: string): GraphQLError => nodeError('bad_request', message);

/** Cloudflare's Time format: ISO 8601 UTC without milliseconds. */
const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const floorTo = (ms: number, step: number): number => Math.floor(ms / step) * step;

function dimensionValue(bucket: TrafficBucket, dimension: Dimension): string | number {
  switch (dimension) {
    case 'clientRequestHTTPHost':
      return bucket.host;
    case 'edgeResponseStatus':
      return bucket.status;
    case 'date':
      return isoSeconds(bucket.minute).slice(0, 10);
    case 'datetimeHour':
      return isoSeconds(floorTo(bucket.minute, 3_600_000));
    case 'datetimeFifteenMinutes':
      return isoSeconds(floorTo(bucket.minute, 900_000));
    case 'datetimeFiveMinutes':
      return isoSeconds(floorTo(bucket.minute, 300_000));
    default:
      return isoSeconds(bucket.minute);
  }
}

function timeOf(value: unknown, field: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw badRequest(`filter.${field} must be a time in ISO 8601 (e.g. 2026-12-07T10:00:00Z), got ${JSON.stringify(value)}`);
  return ms;
}

/** The filter's time range [from, to) in ms, from its own fields or one of its AND members. */
function timeRange(filter: Record<string, unknown>): { from: number; to: number } {
  const parts = [filter, ...(Array.isArray(filter.AND) ? filter.AND.filter(isJsonObject) : [])];
  const pick = (field: string): number | undefined => {
    const holder = parts.find((part) => part[field] !== undefined && part[field] !== null);
    return holder === undefined ? undefined : timeOf(holder[field], field);
  };
  const geq = pick('datetime_geq');
  const gt = pick('datetime_gt');
  const lt = pick('datetime_lt');
  const leq = pick('datetime_leq');
  const from = geq ?? (gt === undefined ? undefined : gt + 1);
  const to = lt ?? (leq === undefined ? undefined : leq + 1);
  if (from === undefined || to === undefined) {
    throw badRequest('a time range is required: filter on datetime_geq (or datetime_gt) and datetime_lt (or datetime_leq)');
  }
  return { from, to };
}

/** Cloudflare's two limits: the range's width (maxDuration) and how far back it reaches (notOlderThan). */
function checkRange(range: { from: number; to: number }, limits: DatasetLimits, now: number): void {
  if ((range.to - range.from) / 1000 > limits.maxDuration) throw badRequest(`cannot request a time range wider than ${limits.maxDuration}s`);
  if (range.from < now - limits.notOlderThan * 1000) throw badRequest(`cannot request data older than ${limits.notOlderThan}s`);
}

type Predicate = (bucket: TrafficBucket) => boolean;

function leafPredicate(field: string, value: unknown): Predicate | undefined {
  switch (field) {
    case 'datetime_geq':
      return (b) => b.minute >= timeOf(value, field);
    case 'datetime_gt':
      return (b) => b.minute > timeOf(value, field);
    case 'datetime_lt':
      return (b) => b.minute < timeOf(value, field);
    case 'datetime_leq':
      return (b) => b.minute <= timeOf(value, field);
    case 'clientRequestHTTPHost':
      return (b) => b.host === String(value).toLowerCase();
    case 'clientRequestHTTPHost_neq':
      return (b) => b.host !== String(value).toLowerCase();
    case 'clientRequestHTTPHost_in':
      return Array.isArray(value) ? (b) => value.some((host) => String(host).toLowerCase() === b.host) : undefined;
    case 'requestSource':
      // Everything the sandbox edge carries comes from visitors.
      return () => value === 'eyeball';
    default:
      return statusPredicate(field, Number(value), value);
  }
}

function statusPredicate(field: string, status: number, value: unknown): Predicate | undefined {
  switch (field) {
    case 'edgeResponseStatus':
      return (b) => b.status === status;
    case 'edgeResponseStatus_neq':
      return (b) => b.status !== status;
    case 'edgeResponseStatus_geq':
      return (b) => b.status >= status;
    case 'edgeResponseStatus_gt':
      return (b) => b.status > status;
    case 'edgeResponseStatus_lt':
      return (b) => b.status < status;
    case 'edgeResponseStatus_leq':
      return (b) => b.status <= status;
    case 'edgeResponseStatus_in':
      return Array.isArray(value) ? (b) => value.some((one) => Number(one) === b.status) : undefined;
    default:
      return undefined;
  }
}

/** Every field of the filter must hold; AND: every member; OR: at least one. */
function filterPredicate(filter: Record<string, unknown>): Predicate {
  const predicates: Predicate[] = [];
  for (const [field, value] of Object.entries(filter)) {
    if (value === undefined || value === null) continue;
    if (field === 'AND' || field === 'OR') {
      const members = (Array.isArray(value) ? value : []).filter(isJsonObject).map(filterPredicate);
      predicates.push(field === 'AND' ? (b) => members.every((p) => p(b)) : (b) => members.some((p) => p(b)));
      continue;
    }
    const predicate = leafPredicate(field, value);
    if (predicate !== undefined) predicates.push(predicate);
  }
  return (bucket) => predicates.every((predicate) => predicate(bucket));
}

function group(buckets: readonly TrafficBucket[], dimensions: readonly Dimension[]): AdaptiveGroup[] {
  const groups = new Map<string, AdaptiveGroup>();
  for (const bucket of buckets) {
    const values = dimensions.map((dimension) => dimensionValue(bucket, dimension));
    const key = JSON.stringify(values);
    let found = groups.get(key);
    if (found === undefined) {
      found = { count: 0, sum: { edgeResponseBytes: 0, visits: 0 }, avg: { sampleInterval: 1 }, dimensions: Object.fromEntries(dimensions.map((d, i) => [d, values[i]])) };
      groups.set(key, found);
    }
    found.count += bucket.requests;
    found.sum.edgeResponseBytes += bucket.bytes;
    // The edge sees no Referer-based page views: every request it carried counts as a visit.
    found.sum.visits += bucket.requests;
  }
  return [...groups.values()];
}

function sortKey(row: AdaptiveGroup, field: string): string | number {
  if (field === 'count') return row.count;
  if (field === 'sum_edgeResponseBytes') return row.sum.edgeResponseBytes;
  if (field === 'sum_visits') return row.sum.visits;
  return isDimension(field) ? (row.dimensions[field] ?? '') : '';
}

function order(rows: AdaptiveGroup[], orderBy: unknown, dimensions: ReadonlySet<Dimension>): AdaptiveGroup[] {
  const keys = (Array.isArray(orderBy) ? orderBy : []).map((value) => {
    const match = /^(.+)_(ASC|DESC)$/.exec(String(value));
    const field = match?.[1] ?? '';
    if (isDimension(field) && !dimensions.has(field)) {
      throw badRequest(`orderBy ${String(value)} needs dimensions { ${field} } in the query`);
    }
    return { field, direction: match?.[2] === 'DESC' ? -1 : 1 };
  });
  return rows.sort((a, b) => {
    for (const { field, direction } of keys) {
      const left = sortKey(a, field);
      const right = sortKey(b, field);
      if (left !== right) return (left < right ? -1 : 1) * direction;
    }
    return 0;
  });
}

function pageSize(limit: unknown, limits: DatasetLimits): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) throw badRequest(`limit must be a whole number >= 0, got ${JSON.stringify(limit)}`);
  if (limit > limits.maxPageSize) throw badRequest(`limit must be less or equal to ${limits.maxPageSize}`);
  return limit;
}

/** The node's rows from the zone's buckets (every bucket of the zone; the range is read from the filter). */
export function adaptiveGroups(zoneBuckets: (from: number, to: number) => TrafficBucket[], query: GroupsQuery, limits: DatasetLimits, now = Date.now()): AdaptiveGroup[] {
  const filter = isJsonObject(query.filter) ? query.filter : {};
  const size = pageSize(query.limit, limits);
  const range = timeRange(filter);
  checkRange(range, limits, now);
  const matching = zoneBuckets(floorTo(range.from, 60_000), range.to).filter(filterPredicate(filter));
  const dimensions = DIMENSIONS.filter((dimension) => query.dimensions.has(dimension));
  return order(group(matching, dimensions), query.orderBy, query.dimensions).slice(0, size);
}
