import { bench, describe, expect } from 'vitest';
import { runLimitsBenchmark } from './mcp-limits.ts';

/**
 * `npm run bench`: many sessions from one project and an unauthenticated flood against `serve`. Fails only on wrong
 * results (sessions beyond the cap kept, a flood answered otherwise than 401, a row per denied request); the figures
 * are printed. To update docs/performance.md: `node --import tsx test/bench/mcp-limits.ts --write`.
 */
describe('MCP limits', () => {
  bench(
    '300 sessions, 500 unauthenticated requests',
    async () => {
      const figures = await runLimitsBenchmark({ sessions: 300, flood: 500, settle: false });
      console.log(JSON.stringify(figures));
      expect(figures.sessionsKept).toBeLessThanOrEqual(16);
      expect(figures.floodStatuses).toEqual({ 401: 500 });
      expect(figures.auditRowsFromFlood).toBeLessThanOrEqual(2);
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
