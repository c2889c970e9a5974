import { bench, describe, expect } from 'vitest';
import { realCloudflaredForTests } from '../helpers/real-cloudflared.ts';
import { runBlueGreenBenchmark } from './blue-green.ts';

/**
 * `npm run bench`: 10 blue-green switches (tunnel_update_cname A → B → A …) under continuous traffic through the
 * sandbox edge, with the stand-in cloudflared and with the real one (skipped with a notice without the binary, failed
 * under CI). Fails on a failed request or a next request (after the call's answer) that missed the new origin; prints
 * the figures. The requests the clients sent after the answer that the old origin still served are printed, not asserted:
 * on the real cloudflared one in a few runs is (docs/performance.md, "Blue-green switch").
 * To update docs/performance.md: `node --import tsx test/bench/blue-green.ts --write`.
 */
const binary = realCloudflaredForTests('the blue-green benchmark on the real cloudflared');
const once = { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 };

async function switches(cloudflared: string | null): Promise<void> {
  const figures = await runBlueGreenBenchmark({ binary: cloudflared, switches: 10 });
  console.log(JSON.stringify(figures));
  expect(figures.failed).toBe(0);
  expect(figures.nextRequestViolations).toBe(0);
}

describe('blue-green switch under traffic', () => {
  bench('10 switches on the stand-in cloudflared', () => switches(null), once);
  describe.skipIf(binary === null)('the real cloudflared', () => {
    bench('10 switches on cloudflared 2026.3.0', () => switches(binary), once);
  });
});
