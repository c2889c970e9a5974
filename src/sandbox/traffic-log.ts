/**
 * What the sandbox edge carried, kept small: visitors' requests counted per (minute, host, status) with the bytes sent
 * back, as the Cloudflare API emulator's GraphQL Analytics answers them (httpRequestsAdaptiveGroups). Buckets older
 * than `keepMs` (8 days: the longest lookback of the emulator's Free/Pro limits and then some) are dropped, and at most
 * `maxBuckets` are kept (the oldest minutes go first), so a busy sandbox's memory stays bounded.
 */

export interface TrafficRecord {
  /** When the request arrived, ms since the epoch. */
  at: number;
  /** The Host the visitor asked for, lowercase, without a port. */
  host: string;
  /** The status sent to the visitor. */
  status: number;
  /** Bytes sent to the visitor for that response (headers and body). */
  bytes: number;
}

export interface TrafficBucket {
  /** The minute's start, ms since the epoch. */
  minute: number;
  host: string;
  status: number;
  requests: number;
  bytes: number;
}

export interface TrafficLogOptions {
  /** Default 8 days. */
  keepMs?: number;
  /** Default 20 000 (a few MB at most). */
  maxBuckets?: number;
  /** The clock pruning is measured against; default Date.now. */
  now?: () => number;
}

const MINUTE_MS = 60_000;
export const TRAFFIC_KEEP_MS = 8 * 24 * 60 * MINUTE_MS;
export const TRAFFIC_MAX_BUCKETS = 20_000;

/** One minute's buckets, keyed `host status`. */
type MinuteBuckets = Map<string, TrafficBucket>;

export class TrafficLog {
  private readonly keepMs: number;
  private readonly maxBuckets: number;
  private readonly now: () => number;
  /** The minutes held, ascending (a new minute is nearly always the last). */
  private readonly minutes: number[] = [];
  private readonly byMinute = new Map<number, MinuteBuckets>();
  private count = 0;

  constructor(options: TrafficLogOptions = {}) {
    this.keepMs = options.keepMs ?? TRAFFIC_KEEP_MS;
    this.maxBuckets = options.maxBuckets ?? TRAFFIC_MAX_BUCKETS;
    this.now = options.now ?? Date.now;
  }

  record(entry: TrafficRecord): void {
    const minute = Math.floor(entry.at / MINUTE_MS) * MINUTE_MS;
    if (minute < this.now() - this.keepMs) return;
    const buckets = this.byMinute.get(minute) ?? this.addMinute(minute);
    const key = `${entry.host} ${entry.status}`;
    const bucket = buckets.get(key);
    if (bucket === undefined) {
      buckets.set(key, { minute, host: entry.host, status: entry.status, requests: 1, bytes: entry.bytes });
      this.count += 1;
    } else {
      bucket.requests += 1;
      bucket.bytes += entry.bytes;
    }
    this.prune();
  }

  /** Copies of the buckets whose minute starts in [fromMs, toMs), oldest first. */
  buckets(fromMs = -Infinity, toMs = Infinity): TrafficBucket[] {
    this.prune();
    const found: TrafficBucket[] = [];
    for (const minute of this.minutes) {
      if (minute < fromMs || minute >= toMs) continue;
      for (const bucket of this.byMinute.get(minute)?.values() ?? []) found.push({ ...bucket });
    }
    return found;
  }

  /** How many (minute, host, status) buckets are held. */
  get size(): number {
    return this.count;
  }

  private addMinute(minute: number): MinuteBuckets {
    const buckets: MinuteBuckets = new Map();
    this.byMinute.set(minute, buckets);
    let index = this.minutes.length;
    while (index > 0 && (this.minutes[index - 1] ?? 0) > minute) index -= 1;
    this.minutes.splice(index, 0, minute);
    return buckets;
  }

  /** Drops the minutes older than keepMs, then the oldest minutes while over maxBuckets (never the newest one). */
  private prune(): void {
    const cutoff = this.now() - this.keepMs;
    while (this.minutes.length > 0 && ((this.minutes[0] ?? 0) < cutoff || (this.count > this.maxBuckets && this.minutes.length > 1))) {
      this.dropOldestMinute();
    }
  }

  private dropOldestMinute(): void {
    const oldest = this.minutes.shift();
    if (oldest === undefined) return;
    this.count -= this.byMinute.get(oldest)?.size ?? 0;
    this.byMinute.delete(oldest);
  }
}
