import type { ZonePlan } from '../emulator-state.ts';
import type { TrafficLog } from '../../traffic-log.ts';

/**
 * The limits of the `httpRequestsAdaptiveGroups` dataset per zone plan, as the GraphQL `settings` node answers them
 * (seconds). These defaults are the emulator's choice, modelled on Cloudflare's published table; a client must read
 * the real ones from `settings` rather than assume them.
 */
export interface DatasetLimits {
  enabled: boolean;
  /** The widest time range one query may ask for. */
  maxDuration: number;
  /** How far back a query may reach (its start must be newer than now − notOlderThan). */
  notOlderThan: number;
  /** The largest `limit`. */
  maxPageSize: number;
}

export type AnalyticsLimits = Record<ZonePlan, DatasetLimits>;

const DAY = 86_400;

export const DEFAULT_ANALYTICS_LIMITS: AnalyticsLimits = {
  free: { enabled: true, maxDuration: DAY, notOlderThan: 8 * DAY, maxPageSize: 10_000 },
  pro: { enabled: true, maxDuration: 3 * DAY, notOlderThan: 31 * DAY, maxPageSize: 10_000 },
  business: { enabled: true, maxDuration: 31 * DAY, notOlderThan: 90 * DAY, maxPageSize: 10_000 },
  enterprise: { enabled: true, maxDuration: 31 * DAY, notOlderThan: 90 * DAY, maxPageSize: 10_000 },
};

/** The defaults with some plans' values replaced (e.g. a Free zone whose lookback is shorter than 7 days, for a test). */
export function analyticsLimits(overrides: Partial<Record<ZonePlan, Partial<DatasetLimits>>> = {}): AnalyticsLimits {
  const limitsOf = (plan: ZonePlan): DatasetLimits => ({ ...DEFAULT_ANALYTICS_LIMITS[plan], ...overrides[plan] });
  return { free: limitsOf('free'), pro: limitsOf('pro'), business: limitsOf('business'), enterprise: limitsOf('enterprise') };
}

/** What the GraphQL Analytics route reads: the edge's records (none without a log) and the limits. */
export interface AnalyticsSource {
  traffic: TrafficLog | undefined;
  limits: AnalyticsLimits;
}
