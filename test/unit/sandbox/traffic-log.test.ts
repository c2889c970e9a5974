import { describe, expect, it } from 'vitest';
import { TrafficLog } from '../../../src/sandbox/traffic-log.ts';

const MINUTE = 60_000;
const T0 = Date.parse('2026-12-07T10:00:00Z');

describe('TrafficLog', () => {
  it('aggregates per (minute, host, status) and answers a range, oldest first', () => {
    const log = new TrafficLog({ now: () => T0 + 10 * MINUTE });
    log.record({ at: T0 + 1_000, host: 'app.153.se', status: 200, bytes: 100 });
    log.record({ at: T0 + 59_000, host: 'app.153.se', status: 200, bytes: 50 });
    log.record({ at: T0 + 2_000, host: 'app.153.se', status: 500, bytes: 10 });
    log.record({ at: T0 + MINUTE, host: 'app.153.se', status: 200, bytes: 7 });
    log.record({ at: T0 + 3_000, host: 'other.153.se', status: 200, bytes: 1 });
    expect(log.size).toBe(4);
    expect(log.buckets(T0, T0 + MINUTE)).toEqual([
      { minute: T0, host: 'app.153.se', status: 200, requests: 2, bytes: 150 },
      { minute: T0, host: 'app.153.se', status: 500, requests: 1, bytes: 10 },
      { minute: T0, host: 'other.153.se', status: 200, requests: 1, bytes: 1 },
    ]);
    expect(log.buckets(T0 + MINUTE)).toEqual([{ minute: T0 + MINUTE, host: 'app.153.se', status: 200, requests: 1, bytes: 7 }]);
  });

  it('keeps minutes in order when an older one arrives late', () => {
    const log = new TrafficLog({ now: () => T0 + 10 * MINUTE });
    log.record({ at: T0 + 2 * MINUTE, host: 'a', status: 200, bytes: 1 });
    log.record({ at: T0, host: 'a', status: 200, bytes: 1 });
    expect(log.buckets().map((bucket) => bucket.minute)).toEqual([T0, T0 + 2 * MINUTE]);
  });

  it('drops buckets older than keepMs, and ignores a record that old', () => {
    let now = T0;
    const log = new TrafficLog({ now: () => now, keepMs: 5 * MINUTE });
    log.record({ at: T0, host: 'a', status: 200, bytes: 1 });
    log.record({ at: T0 + 3 * MINUTE, host: 'a', status: 200, bytes: 1 });
    now = T0 + 6 * MINUTE;
    expect(log.buckets().map((bucket) => bucket.minute)).toEqual([T0 + 3 * MINUTE]);
    log.record({ at: T0, host: 'a', status: 200, bytes: 1 });
    expect(log.size).toBe(1);
  });

  it('caps the number of buckets by dropping the oldest minutes', () => {
    const log = new TrafficLog({ now: () => T0 + 100 * MINUTE, maxBuckets: 3 });
    for (let minute = 0; minute < 5; minute += 1) log.record({ at: T0 + minute * MINUTE, host: 'a', status: 200, bytes: 1 });
    expect(log.size).toBe(3);
    expect(log.buckets().map((bucket) => (bucket.minute - T0) / MINUTE)).toEqual([2, 3, 4]);
  });
});
