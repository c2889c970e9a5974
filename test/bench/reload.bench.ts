import { bench, describe, expect } from 'vitest';
import { runReloadBenchmark } from './reload-under-traffic.ts';

/**
 * `npm run bench`: 10 replica reloads under continuous traffic through the sandbox edge (one run, since one
 * run already holds 10 reloads). Fails if any request failed; prints the figures. To update
 * docs/performance.md: `node --import tsx test/bench/reload-under-traffic.ts --write`.
 */
describe('reload without downtime', () => {
  bench(
    '10 replica reloads under traffic',
    async () => {
      const figures = await runReloadBenchmark({ reloads: 10 });
      console.log(JSON.stringify(figures));
      expect(figures.failed).toBe(0);
      expect(figures.strategies).toEqual({ replica: 10 });
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
