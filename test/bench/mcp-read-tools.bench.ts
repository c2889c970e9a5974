import { bench, describe, expect } from 'vitest';
import { runReadToolsBenchmark } from './mcp-read-tools.ts';

/**
 * `npm run bench`: MCP read tools at 1,000 routes against the no-op tool (one run of 500 calls per tool). Prints the
 * figures; fails only if a tool answers wrongly (the ratios are reported, not asserted: they depend on the machine).
 * To update docs/performance.md: `node --import tsx test/bench/mcp-read-tools.ts --write`.
 */
describe('MCP read tools at 1,000 routes', () => {
  bench(
    'tunnel_get_status and tunnel_list_cnames vs tunnel_ping',
    async () => {
      const figures = await runReadToolsBenchmark({ calls: 500 });
      console.log(JSON.stringify(figures));
      expect(figures.routes).toBeGreaterThanOrEqual(1000);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
