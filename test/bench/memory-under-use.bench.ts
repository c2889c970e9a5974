import { bench, describe, expect } from 'vitest';
import { runMemoryBenchmark } from './memory-under-use.ts';

/**
 * `npm run bench`: a real `serve` booted with 1,000 routes, then 1,000 mixed tool calls, on the Node that runs the
 * benchmarks. Fails on wrong results (a call that fails); the memory figures are printed, not asserted (they depend on
 * the machine): docs/performance.md has them against their budgets. To update the doc:
 * `node --import tsx test/bench/memory-under-use.ts --node <node 24> --node <node 22> --untuned --write`.
 */
describe('memory with use at 1,000 routes', () => {
  bench(
    'RSS settled and at the peak',
    async () => {
      const figures = await runMemoryBenchmark({ settleSeconds: 20 });
      console.log(JSON.stringify(figures));
      expect(Object.values(figures.callsByTool).reduce((sum, n) => sum + n, 0)).toBe(1000);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
