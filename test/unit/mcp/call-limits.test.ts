import { describe, expect, it } from 'vitest';
import { ToolCallLimiter } from '../../../src/mcp/call-limits.ts';
import { toErrorShape } from '../../../src/errors.ts';

describe('ToolCallLimiter', () => {
  const refusal = (run: () => void) => {
    try {
      run();
    } catch (error) {
      return toErrorShape(error);
    }
    return null;
  };

  it('lets a project make its calls per minute, refuses the next with when to retry, and marks only the first refusal of a run', () => {
    let now = 1_000_000;
    const limiter = new ToolCallLimiter(3, () => now);
    for (let i = 0; i < 3; i += 1) {
      expect(refusal(() => limiter.admit('consilio'))).toBeNull();
      now += 10_000;
    }
    const first = refusal(() => limiter.admit('consilio'));
    expect(first).toMatchObject({ code: 'RATE_LIMITED', details: { limit: 3, windowSeconds: 60, retryAfterSeconds: 30, firstRefusal: true } });
    expect(refusal(() => limiter.admit('consilio'))?.details.firstRefusal).toBe(false);
    expect(refusal(() => limiter.admit('odin'))).toBeNull();
    now += 30_000; // the first call leaves the window
    expect(refusal(() => limiter.admit('consilio'))).toBeNull();
    now += 1;
    expect(refusal(() => limiter.admit('consilio'))?.details.firstRefusal).toBe(true);
  });

  it('0 is no limit', () => {
    const limiter = new ToolCallLimiter(0);
    for (let i = 0; i < 10_000; i += 1) limiter.admit('consilio');
  });
});
