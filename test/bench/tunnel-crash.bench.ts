import { bench, describe, expect } from 'vitest';
import { runCrashBenchmark } from './tunnel-crash.ts';

/**
 * `npm run bench`: cloudflared killed with SIGKILL 5 times; detection time and the backoff waits.
 * Fails if a crash took 1 s or more to detect or a wait left the schedule.
 * To update docs/performance.md: `node --import tsx test/bench/tunnel-crash.ts --write`.
 */
describe('crash of cloudflared', () => {
  bench(
    'SIGKILL → detected → restarted on the backoff schedule',
    async () => {
      const figures = await runCrashBenchmark({ crashes: 5 });
      console.log(JSON.stringify(figures));
      expect(figures.detection.max).toBeLessThan(1000);
      expect(figures.scheduleFollowed).toBe(true);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
