import { bench, describe, expect } from 'vitest';
import { runRecoverBenchmark } from './recover.ts';

/**
 * `npm run bench`: `tunnel-manager recover` rebuilding a lost ledger of 1,000 routes (3 runs). Prints the figures;
 * fails only if a run does not bring every route back. To update docs/performance.md:
 * `node --import tsx test/bench/recover.ts --write`.
 */
describe('recover at 1,000 routes', () => {
  bench(
    'tunnel-manager recover after the database was deleted',
    async () => {
      const figures = await runRecoverBenchmark({ runs: 3 });
      console.log(JSON.stringify(figures));
      expect(figures.recoveredActive).toBe(1000);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
