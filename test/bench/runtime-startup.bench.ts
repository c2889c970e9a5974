import { bench, describe, expect } from 'vitest';
import { runStartupBenchmark } from './runtime-startup.ts';

/**
 * `npm run bench`: start-up of the built command against `node -e 0` in the same run, `serve` to sandbox.json, and
 * the resident memory of the manager and the stand-in. Fails only on wrong results (a command that did not run);
 * the figures are printed. To update docs/performance.md: `node --import tsx test/bench/runtime-startup.ts --write`.
 */
describe('start-up of the built command', () => {
  bench(
    '--help, call tunnel_get_status, serve, RSS',
    async () => {
      const figures = await runStartupBenchmark({ runs: 5, settleSeconds: 15 });
      console.log(JSON.stringify(figures));
      expect(figures.help.n).toBe(5);
      expect(figures.callStatus.n).toBe(5);
      expect(figures.managerRssMb).toBeGreaterThan(0);
      expect(figures.standinRssMb).toBeGreaterThan(0);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
