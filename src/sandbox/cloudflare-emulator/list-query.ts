import { apiFailures, type ResultInfo } from './api-envelope.ts';

/**
 * Query handling shared by the list endpoints: Cloudflare's filter operators
 * (`name.exact`, `comment.contains`, `tag.present`…, case-insensitive), `match=all|any`, and
 * page-number pagination with `page` / `per_page` and the `result_info` block.
 */

export type Predicate<T> = (item: T) => boolean;

/** String filter operators of the v4 API: `field` (exact), `field.exact|contains|startswith|endswith`. */
export function stringFilters<T>(
  query: URLSearchParams,
  field: string,
  read: (item: T) => string | null,
): Predicate<T>[] {
  const predicates: Predicate<T>[] = [];
  const lower = (value: string | null) => (value ?? '').toLowerCase();
  const operators: [string, (have: string, want: string) => boolean][] = [
    ['', (have, want) => have === want],
    ['.exact', (have, want) => have === want],
    ['.contains', (have, want) => have.includes(want)],
    ['.startswith', (have, want) => have.startsWith(want)],
    ['.endswith', (have, want) => have.endsWith(want)],
  ];
  for (const [suffix, test] of operators) {
    const want = query.get(field + suffix);
    if (want === null) continue;
    predicates.push((item) => read(item) !== null && test(lower(read(item)), want.toLowerCase()));
  }
  if (query.has(`${field}.present`)) predicates.push((item) => (read(item) ?? '') !== '');
  if (query.has(`${field}.absent`)) predicates.push((item) => (read(item) ?? '') === '');
  return predicates;
}

/** Combines predicates as `match=all` (default) or `match=any` asks. */
export function combine<T>(predicates: Predicate<T>[], match: string | null): Predicate<T> {
  if (predicates.length === 0) return () => true;
  if (match === 'any') return (item) => predicates.some((p) => p(item));
  if (match !== null && match !== 'all') throw apiFailures.validation(`match must be "all" or "any", got ${JSON.stringify(match)}`, 1001);
  return (item) => predicates.every((p) => p(item));
}

export interface PageLimits {
  defaultPerPage: number;
  minPerPage: number;
  maxPerPage: number;
}

/** Zones: 5 to 50 per page, 20 by default. DNS records: 5 to 5,000,000, 100 by default. */
export const ZONE_PAGE_LIMITS: PageLimits = { defaultPerPage: 20, minPerPage: 5, maxPerPage: 50 };
export const RECORD_PAGE_LIMITS: PageLimits = { defaultPerPage: 100, minPerPage: 5, maxPerPage: 5_000_000 };

function wholeNumber(query: URLSearchParams, key: string): number | undefined {
  const raw = query.get(key);
  if (raw === null) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw apiFailures.validation(`${key} must be a whole number of at least 1, got ${JSON.stringify(raw)}`, 1001);
  return value;
}

/** One page of `items` and its `result_info`. A page past the last is empty (the SDK stops on an empty page). */
export function paginate<T>(items: T[], query: URLSearchParams, limits: PageLimits): { page: T[]; resultInfo: ResultInfo } {
  const requested = wholeNumber(query, 'per_page') ?? limits.defaultPerPage;
  const perPage = Math.min(limits.maxPerPage, Math.max(limits.minPerPage, requested));
  const page = wholeNumber(query, 'page') ?? 1;
  const slice = items.slice((page - 1) * perPage, page * perPage);
  return {
    page: slice,
    resultInfo: {
      page,
      per_page: perPage,
      count: slice.length,
      total_count: items.length,
      total_pages: Math.max(1, Math.ceil(items.length / perPage)),
    },
  };
}

/** Sorts by `order` (one of `allowed`) and `direction` (asc/desc); unknown keys are a validation error. */
export function sortBy<T>(items: T[], query: URLSearchParams, allowed: Record<string, (item: T) => string | number | boolean>, fallback: string): T[] {
  const order = query.get('order') ?? fallback;
  const read = allowed[order];
  if (read === undefined) throw apiFailures.validation(`order must be one of ${Object.keys(allowed).join(', ')}, got ${JSON.stringify(order)}`, 1001);
  const direction = query.get('direction') ?? 'asc';
  if (direction !== 'asc' && direction !== 'desc') throw apiFailures.validation(`direction must be "asc" or "desc", got ${JSON.stringify(direction)}`, 1001);
  const sign = direction === 'asc' ? 1 : -1;
  return [...items].sort((a, b) => {
    const x = read(a);
    const y = read(b);
    return x < y ? -sign : x > y ? sign : 0;
  });
}
