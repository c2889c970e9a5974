import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HealthSample } from '../../../src/health-sample.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { HOUR_MS, HealthRepository } from '../../../src/store/health-repository.ts';

const DAY_MS = 24 * HOUR_MS;
const T0 = Date.UTC(2025, 0, 1, 0, 0, 0);

function sample(ts: number, result: HealthSample['result'], ready: number | null, latencyMs: number | null): HealthSample {
  return { ts, result, pid: 42, readyConnections: ready, haConnections: ready, totalRequests: 10, requestErrors: 0, latencyMs, ...(result === 'failed' ? { error: 'down' } : {}) };
}

let dir: string;
let db: Database;
let repo: HealthRepository;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-health-'));
  db = openDatabase(join(dir, 'store.db')).db;
  repo = new HealthRepository(db);
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('health repository', () => {
  it('stores samples and summarises the last day', () => {
    repo.insert(sample(T0, 'ok', 4, 2));
    repo.insert(sample(T0 + 30_000, 'degraded', 2, 4));
    repo.insert(sample(T0 + 60_000, 'failed', null, null));
    repo.insert(sample(T0 + 90_000, 'failed', null, null));
    const summary = repo.summary(T0 + 100_000);
    expect(summary).toMatchObject({ samples: 4, ok: 1, degraded: 1, failed: 2, uptimePct: 50, latencyAvgMs: 3, readyMin: 2, stateSince: T0 + 60_000 });
    expect(summary.latest).toMatchObject({ ts: T0 + 90_000, result: 'failed', error: 'down', pid: 42 });
    expect(repo.recent(2).map((s) => s.ts)).toEqual([T0 + 90_000, T0 + 60_000]);
  });

  it('answers an empty summary with nulls, not zeros', () => {
    expect(repo.summary(T0)).toMatchObject({ latest: null, samples: 0, uptimePct: null, stateSince: null });
  });

  it('rolls complete hours up (min/avg/max, uptime) and leaves the current hour raw', () => {
    repo.insert(sample(T0 + 1_000, 'ok', 4, 10));
    repo.insert(sample(T0 + 2_000, 'degraded', 2, 20));
    repo.insert(sample(T0 + 3_000, 'failed', 0, null));
    repo.insert(sample(T0 + 4_000, 'ok', 4, 30));
    repo.insert(sample(T0 + HOUR_MS + 5, 'ok', 4, 1)); // the current hour
    const result = repo.rollupAndPrune(T0 + HOUR_MS + 10);
    expect(result).toEqual({ rolledUpHours: 1, deletedSamples: 0 });
    const [hour, ...rest] = repo.hourly(T0 - DAY_MS, T0 + DAY_MS);
    expect(rest).toEqual([]);
    expect(hour).toEqual({
      hourStart: T0,
      samples: 4,
      okSamples: 2,
      degradedSamples: 1,
      failedSamples: 1,
      readyMin: 0,
      readyAvg: 2.5,
      readyMax: 4,
      latencyMin: 10,
      latencyAvg: 20,
      latencyMax: 30,
      uptimePct: 75,
    });
  });

  it('prunes raw samples past the retention only after rolling their hours up, and stays idempotent', () => {
    const now = T0 + 10 * DAY_MS + 30 * 60_000;
    for (let day = 0; day <= 10; day += 1) {
      repo.insert(sample(T0 + day * DAY_MS + 60_000, 'ok', 4, 5));
      repo.insert(sample(T0 + day * DAY_MS + 120_000, 'failed', 0, null));
    }
    const first = repo.rollupAndPrune(now, 7);
    // Days 0, 1 and 2 end more than 7 days before `now`: their 6 samples go, their 3 hours stay as rollups.
    // Day 10's samples are in the current hour: still raw, not rolled up.
    expect(first.deletedSamples).toBe(6);
    expect(first.rolledUpHours).toBe(10);
    expect(repo.summary(now, 30 * DAY_MS).samples).toBe(16);
    const hours = repo.hourly(T0, now);
    expect(hours).toHaveLength(10);
    expect(hours[0]).toMatchObject({ hourStart: T0, samples: 2, uptimePct: 50 });

    // Running again changes nothing: the rolled-up hours are recomputed from complete raw hours only.
    const second = repo.rollupAndPrune(now, 7);
    expect(second.deletedSamples).toBe(0);
    expect(repo.hourly(T0, now)).toEqual(hours);
  });
});
