import { bench, describe, expect } from 'vitest';
import { runTrafficBenchmark } from './traffic.ts';

/**
 * `npm run bench`: what tunnel_get_traffic costs against the emulator (one run holds every measurement). Fails if a
 * project asking every second reached Cloudflare more than once a minute per hostname. To update docs/performance.md:
 * `node --import tsx test/bench/traffic.ts --write`.
 */
describe('tunnel_get_traffic', () => {
  bench(
    'cold and cached calls, and ten minutes of asking every second',
    async () => {
      const figures = await runTrafficBenchmark();
      console.log(JSON.stringify(figures));
      expect(figures.steady.requests).toBeLessThanOrEqual(figures.steady.ceiling);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
