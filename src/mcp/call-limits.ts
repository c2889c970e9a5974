import { TunnelManagerError } from '../errors.ts';

/**
 * Tool calls per project per minute, over all the project's sessions (the MCP specification asks servers to rate
 * limit tool invocations): a sliding window of 60 s. A call over the limit is refused with RATE_LIMITED, saying the
 * limit and when the next call will be let in; it costs nothing else (no backend work).
 */
export class ToolCallLimiter {
  private readonly calls = new Map<string, number[]>();
  /** Per project, the window in which its refusals were already audited (one audit row per window, not per call). */
  private readonly refusedWindow = new Map<string, number>();

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Lets a call of `project` in, or throws RATE_LIMITED. `firstRefusal` on the error's details is true for the first
   * refusal of a run of them, the one worth an audit row.
   */
  admit(project: string): void {
    if (this.perMinute === 0) return;
    const now = this.now();
    const calls = this.calls.get(project) ?? [];
    while (calls[0] !== undefined && calls[0] <= now - 60_000) calls.shift();
    if (calls.length < this.perMinute) {
      calls.push(now);
      this.calls.set(project, calls);
      this.refusedWindow.delete(project);
      return;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil(((calls[0] ?? now) + 60_000 - now) / 1000));
    const firstRefusal = !this.refusedWindow.has(project);
    this.refusedWindow.set(project, now);
    throw new TunnelManagerError({
      code: 'RATE_LIMITED',
      message: `${project} made ${this.perMinute} tool calls in the last minute, its limit; this call was not run.`,
      fix: `Retry after ${retryAfterSeconds} seconds, and space your calls (at most ${this.perMinute} a minute). Subscribe to tunnel://status or read tunnel_get_events with a cursor instead of polling.`,
      details: { project, limit: this.perMinute, windowSeconds: 60, retryAfterSeconds, firstRefusal },
    });
  }
}
