import { bench, describe, expect } from 'vitest';
import { realCloudflaredForTests } from '../helpers/real-cloudflared.ts';
import { runRealCloudflaredBenchmark } from './real-cloudflared.ts';

/**
 * `npm run bench`: the uptime budgets on the real cloudflared (10 reloads under traffic, CNAME requests end to end,
 * SIGKILLs, tunnel_restart under traffic). Fails on a failed request during a reload; prints the figures. Skipped
 * with a notice without the binary, failed under CI. To update docs/performance.md:
 * `node --import tsx test/bench/real-cloudflared.ts --write`.
 */
const binary = realCloudflaredForTests('the real cloudflared benchmark');

describe.skipIf(binary === null)('the real cloudflared', () => {
  bench(
    'reloads, CNAME requests, crashes and restarts on cloudflared 2026.3.0',
    async () => {
      const figures = await runRealCloudflaredBenchmark({ binary: binary as string });
      console.log(JSON.stringify(figures));
      expect(figures.reload.failed).toBe(0);
      expect(figures.reload.strategies).toEqual({ replica: 10 });
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
