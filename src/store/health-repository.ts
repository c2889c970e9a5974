import type { Database } from 'better-sqlite3';
import type { HealthResult, HealthSample } from '../health-sample.ts';

/**
 * Tunnel health history: raw probe samples in `tunnel_health` (kept `rawRetentionDays`, 7 by default),
 * hourly rollups in `tunnel_health_hourly` kept for good. Uptime counts `ok` and `degraded` samples
 * (the tunnel served traffic) over all samples of the hour.
 *
 * Pruning only ever removes whole hours, and only after rolling them up in the same transaction, so a
 * rollup is always computed from every raw sample of its hour and can be recomputed at any time.
 */
export const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface HourlyHealth {
  hourStart: number;
  samples: number;
  okSamples: number;
  degradedSamples: number;
  failedSamples: number;
  readyMin: number | null;
  readyAvg: number | null;
  readyMax: number | null;
  latencyMin: number | null;
  latencyAvg: number | null;
  latencyMax: number | null;
  uptimePct: number;
}

export interface HealthSummary {
  latest: HealthSample | null;
  windowMs: number;
  samples: number;
  ok: number;
  degraded: number;
  failed: number;
  /** null when the window holds no sample. */
  uptimePct: number | null;
  latencyAvgMs: number | null;
  readyMin: number | null;
  /** When the latest result began: the first sample of the current run of equal results. */
  stateSince: number | null;
}

interface SampleRow {
  ts: number;
  result: HealthResult;
  pid: number | null;
  ready_connections: number | null;
  ha_connections: number | null;
  total_requests: number | null;
  request_errors: number | null;
  latency_ms: number | null;
  error: string | null;
}

interface WindowRow {
  samples: number;
  ok: number;
  degraded: number;
  failed: number;
  latency_avg: number | null;
  ready_min: number | null;
}

/** What the window query answers over no sample (its aggregates always give one row; this keeps the type honest). */
const EMPTY_WINDOW: WindowRow = { samples: 0, ok: 0, degraded: 0, failed: 0, latency_avg: null, ready_min: null };

interface HourlyRow {
  hour_start: number;
  samples: number;
  ok_samples: number;
  degraded_samples: number;
  failed_samples: number;
  ready_min: number | null;
  ready_avg: number | null;
  ready_max: number | null;
  latency_min: number | null;
  latency_avg: number | null;
  latency_max: number | null;
  uptime_pct: number;
}

function toSample(row: SampleRow): HealthSample {
  const sample: HealthSample = {
    ts: row.ts,
    result: row.result,
    pid: row.pid,
    readyConnections: row.ready_connections,
    haConnections: row.ha_connections,
    totalRequests: row.total_requests,
    requestErrors: row.request_errors,
    latencyMs: row.latency_ms,
  };
  if (row.error !== null) sample.error = row.error;
  return sample;
}

export class HealthRepository {
  private readonly insertSample;
  private readonly rollupBefore;
  private readonly deleteBefore;
  private readonly selectLatest;
  private readonly selectWindow;
  private readonly selectStateSince;
  private readonly selectHourly;
  private readonly selectRecent;
  private readonly pruneTransaction;

  constructor(db: Database) {
    this.insertSample = db.prepare(
      `INSERT INTO tunnel_health (ts, result, pid, ready_connections, ha_connections, total_requests, request_errors, latency_ms, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.rollupBefore = db.prepare(
      `INSERT INTO tunnel_health_hourly
         (hour_start, samples, ok_samples, degraded_samples, failed_samples,
          ready_min, ready_avg, ready_max, latency_min, latency_avg, latency_max, uptime_pct)
       SELECT (ts / ${HOUR_MS}) * ${HOUR_MS} AS hour,
              COUNT(*),
              SUM(result = 'ok'), SUM(result = 'degraded'), SUM(result = 'failed'),
              MIN(ready_connections), AVG(ready_connections), MAX(ready_connections),
              MIN(latency_ms), AVG(latency_ms), MAX(latency_ms),
              100.0 * SUM(result != 'failed') / COUNT(*)
         FROM tunnel_health
        WHERE ts < ?
        GROUP BY hour
       ON CONFLICT (hour_start) DO UPDATE SET
         samples = excluded.samples, ok_samples = excluded.ok_samples,
         degraded_samples = excluded.degraded_samples, failed_samples = excluded.failed_samples,
         ready_min = excluded.ready_min, ready_avg = excluded.ready_avg, ready_max = excluded.ready_max,
         latency_min = excluded.latency_min, latency_avg = excluded.latency_avg, latency_max = excluded.latency_max,
         uptime_pct = excluded.uptime_pct`,
    );
    this.deleteBefore = db.prepare('DELETE FROM tunnel_health WHERE ts < ?');
    this.selectLatest = db.prepare<[], SampleRow>('SELECT * FROM tunnel_health ORDER BY ts DESC, id DESC LIMIT 1');
    this.selectWindow = db.prepare<[number], WindowRow>(
      `SELECT COUNT(*) AS samples,
              COALESCE(SUM(result = 'ok'), 0) AS ok,
              COALESCE(SUM(result = 'degraded'), 0) AS degraded,
              COALESCE(SUM(result = 'failed'), 0) AS failed,
              AVG(latency_ms) AS latency_avg,
              MIN(ready_connections) AS ready_min
         FROM tunnel_health WHERE ts >= ?`,
    );
    this.selectStateSince = db.prepare<[HealthResult], { ts: number | null }>(
      'SELECT MIN(ts) AS ts FROM tunnel_health WHERE ts > COALESCE((SELECT MAX(ts) FROM tunnel_health WHERE result != ?), -1)',
    );
    this.selectHourly = db.prepare<[number, number], HourlyRow>('SELECT * FROM tunnel_health_hourly WHERE hour_start >= ? AND hour_start < ? ORDER BY hour_start');
    this.selectRecent = db.prepare<[number], SampleRow>('SELECT * FROM tunnel_health ORDER BY ts DESC, id DESC LIMIT ?');
    this.pruneTransaction = db.transaction((rollupUntil: number, deleteUntil: number) => {
      const rolled = this.rollupBefore.run(rollupUntil).changes;
      const deleted = this.deleteBefore.run(deleteUntil).changes;
      return { rolledUpHours: rolled, deletedSamples: deleted };
    });
  }

  insert(sample: HealthSample): number {
    const info = this.insertSample.run(
      sample.ts,
      sample.result,
      sample.pid,
      sample.readyConnections,
      sample.haConnections,
      sample.totalRequests,
      sample.requestErrors,
      sample.latencyMs,
      sample.error ?? null,
    );
    return Number(info.lastInsertRowid);
  }

  /**
   * Rolls up every complete hour (before the hour `now` is in) and deletes the raw samples of hours that
   * ended more than `rawRetentionDays` ago — one transaction.
   */
  rollupAndPrune(now: number, rawRetentionDays = 7): { rolledUpHours: number; deletedSamples: number } {
    const currentHour = Math.floor(now / HOUR_MS) * HOUR_MS;
    const deleteUntil = Math.floor((now - rawRetentionDays * DAY_MS) / HOUR_MS) * HOUR_MS;
    return this.pruneTransaction(currentHour, Math.min(deleteUntil, currentHour));
  }

  latest(): HealthSample | null {
    const row = this.selectLatest.get();
    return row === undefined ? null : toSample(row);
  }

  recent(limit: number): HealthSample[] {
    return this.selectRecent.all(limit).map(toSample);
  }

  /** Health over the last `windowMs` (default 24 h) from raw samples, for status answers. */
  summary(now: number, windowMs = DAY_MS): HealthSummary {
    const latest = this.latest();
    const row = this.selectWindow.get(now - windowMs) ?? EMPTY_WINDOW;
    const since = latest === null ? null : (this.selectStateSince.get(latest.result)?.ts ?? null);
    return {
      latest,
      windowMs,
      samples: row.samples,
      ok: row.ok,
      degraded: row.degraded,
      failed: row.failed,
      uptimePct: row.samples === 0 ? null : (100 * (row.ok + row.degraded)) / row.samples,
      latencyAvgMs: row.latency_avg,
      readyMin: row.ready_min,
      stateSince: since,
    };
  }

  hourly(from: number, to: number): HourlyHealth[] {
    return this.selectHourly.all(from, to).map((row) => ({
      hourStart: row.hour_start,
      samples: row.samples,
      okSamples: row.ok_samples,
      degradedSamples: row.degraded_samples,
      failedSamples: row.failed_samples,
      readyMin: row.ready_min ?? null,
      readyAvg: row.ready_avg ?? null,
      readyMax: row.ready_max ?? null,
      latencyMin: row.latency_min ?? null,
      latencyAvg: row.latency_avg ?? null,
      latencyMax: row.latency_max ?? null,
      uptimePct: row.uptime_pct,
    }));
  }
}
