import { bench, describe, expect } from 'vitest';
import { runFootprintBenchmark } from './idle-footprint.ts';

/**
 * `npm run bench`: a real `serve` with 1,000 routes left idle for 60 s (memory, CPU), then its database with a year
 * of health history. Fails if the database budget (< 10 MB) is missed; memory and CPU are printed (see
 * docs/performance.md for the figures against their budgets). To update the doc:
 * `node --import tsx test/bench/idle-footprint.ts --write` (30 s settle, 120 s idle window).
 */
describe('idle footprint with 1,000 routes', () => {
  bench(
    'RSS, CPU and database size',
    async () => {
      const figures = await runFootprintBenchmark({ idleSeconds: 60 });
      console.log(JSON.stringify(figures));
      expect(figures.rulesInConfig).toBeGreaterThanOrEqual(1000);
      expect(figures.database.mb).toBeLessThan(10);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
