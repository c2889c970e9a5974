import type { DatasetLimits, TrafficRow } from '../../cloudflare/traffic-analytics.ts';
import type { HostTraffic } from '../../contract/traffic.ts';

/** Pure parts of tunnel_get_traffic: which time chunks to ask for, and one hostname's figures from the rows. */

const HOUR_MS = 3_600_000;
/** Until the zone's settings node was read: one day per node, the narrowest range a plan allows. */
export const DEFAULT_CHUNK_SECONDS = 86_400;
/** Kept off the plan's oldest readable second, so a request in flight does not cross it. */
const LOOKBACK_MARGIN_MS = 60_000;
const TOP_STATUSES = 5;

export interface ChunkPlan {
  from: Date;
  to: Date;
  chunks: { from: Date; to: Date }[];
  /** Set when the plan keeps less history than the window: what the window was cut to, in words. */
  cut: string | null;
}

/** The window [now − window, now), cut to what the plan keeps, in chunks no wider than the plan allows one node. */
export function planChunks(now: number, windowSeconds: number, limits: DatasetLimits | null): ChunkPlan {
  // Whole seconds: the API's times have no fraction.
  const to = Math.floor(now / 1000) * 1000;
  let from = to - windowSeconds * 1000;
  let cut: string | null = null;
  if (limits && to - from > limits.notOlderThanSeconds * 1000 - LOOKBACK_MARGIN_MS) {
    from = to - limits.notOlderThanSeconds * 1000 + LOOKBACK_MARGIN_MS;
    cut = `the zone's plan keeps ${Math.round(limits.notOlderThanSeconds / 3600)} hours of traffic: the window starts at ${new Date(from).toISOString()}`;
  }
  const step = Math.max(60, limits?.maxDurationSeconds ?? DEFAULT_CHUNK_SECONDS) * 1000;
  const chunks: { from: Date; to: Date }[] = [];
  for (let start = from; start < to; start += step) chunks.push({ from: new Date(start), to: new Date(Math.min(to, start + step)) });
  return { from: new Date(from), to: new Date(to), chunks, cut };
}

function statusClass(status: number): '2xx' | '3xx' | '4xx' | '5xx' | null {
  const hundred = Math.floor(status / 100);
  if (hundred === 2) return '2xx';
  if (hundred === 3) return '3xx';
  if (hundred === 4) return '4xx';
  if (hundred === 5) return '5xx';
  return null;
}

/** Every hour from the one `from` falls in to the one `to` falls in, each with zeros. */
function emptyHours(from: Date, to: Date): Map<string, { requests: number; bytes: number; errors: number }> {
  const hours = new Map<string, { requests: number; bytes: number; errors: number }>();
  const last = Math.floor((to.getTime() - 1) / HOUR_MS) * HOUR_MS;
  for (let hour = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS; hour <= last; hour += HOUR_MS) {
    hours.set(new Date(hour).toISOString(), { requests: 0, bytes: 0, errors: 0 });
  }
  return hours;
}

/** One hostname's figures over the window, from the rows Cloudflare answered for it. */
export function summarizeHost(input: { hostname: string; project: string; rows: readonly TrafficRow[]; from: Date; to: Date; asOf: Date }): HostTraffic {
  const byStatusClass = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  const byStatus = new Map<number, number>();
  const hours = emptyHours(input.from, input.to);
  let requests = 0;
  let bytes = 0;
  for (const row of input.rows) {
    requests += row.requests;
    bytes += row.bytes;
    const kind = statusClass(row.status);
    if (kind) byStatusClass[kind] += row.requests;
    byStatus.set(row.status, (byStatus.get(row.status) ?? 0) + row.requests);
    const hour = hours.get(row.hour);
    if (hour) {
      hour.requests += row.requests;
      hour.bytes += row.bytes;
      if (kind === '5xx') hour.errors += row.requests;
    }
  }
  const topStatusCodes = [...byStatus]
    .map(([status, count]) => ({ status, requests: count }))
    .sort((a, b) => b.requests - a.requests || a.status - b.status)
    .slice(0, TOP_STATUSES);
  return {
    hostname: input.hostname,
    project: input.project,
    available: true,
    reason: null,
    requests,
    bytes,
    byStatusClass,
    errorShare: requests === 0 ? null : byStatusClass['5xx'] / requests,
    topStatusCodes,
    hourly: [...hours].map(([hour, figures]) => ({ hour, ...figures })),
    asOf: input.asOf.toISOString(),
  };
}

/** A hostname whose traffic could not be read: zeros, and why. */
export function unavailableHost(hostname: string, project: string, reason: string): HostTraffic {
  return {
    hostname,
    project,
    available: false,
    reason,
    requests: 0,
    bytes: 0,
    byStatusClass: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    errorShare: null,
    topStatusCodes: [],
    hourly: [],
    asOf: null,
  };
}
