import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/app/config/logger.ts';
import { startHeapTrimmer } from '../../../src/app/schedules/heap-trim.ts';

describe('the heap trimmer', () => {
  it('gives back the pages a burst of garbage made the heap grow into, not only the objects', () => {
    const trimmer = startHeapTrimmer({ firstAfterMs: 3_600_000, intervalMs: 3_600_000, logger: createLogger({ level: 'silent' }) });
    try {
      trimmer.collect();
      const before = getHeapStatistics().total_heap_size;
      // A burst like 100 answers of 1,000 routes: many objects that live a little while, then all garbage.
      let window: unknown[][] = [];
      for (let i = 0; i < 300; i += 1) {
        window.push(Array.from({ length: 5000 }, (_, j) => ({ j, text: `route ${j}` })));
        if (window.length > 60) window.shift();
      }
      window = [];
      const grown = getHeapStatistics().total_heap_size;
      expect(grown - before).toBeGreaterThan(40 * 2 ** 20);
      trimmer.collect();
      const after = getHeapStatistics().total_heap_size;
      expect((after - before) / 2 ** 20).toBeLessThan(10);
    } finally {
      trimmer.stop();
    }
  });
});
