import { bench, describe, expect } from 'vitest';
import { runCnameBenchmark } from './cname-requests.ts';

/**
 * `npm run bench`: CNAME request overhead (sequential requests) and 100 concurrent requests from 4 projects.
 * Fails if any of the 100 is wrong, a rule is lost, or it took more than 3 reloads; the overhead is printed.
 * To update docs/performance.md: `node --import tsx test/bench/cname-requests.ts --write`.
 */
describe('CNAME requests', () => {
  bench(
    'overhead of tunnel_request_cname, then 100 concurrent requests from 4 projects',
    async () => {
      const figures = await runCnameBenchmark({ sequential: 20, concurrent: 100 });
      console.log(JSON.stringify(figures));
      expect(figures.concurrent.errors).toEqual([]);
      expect(figures.concurrent.lostRules).toEqual([]);
      expect(figures.concurrent.tunnelReloads).toBeLessThanOrEqual(3);
      expect(figures.concurrent.pass).toBe(true);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
