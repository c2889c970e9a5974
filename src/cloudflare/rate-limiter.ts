import { TunnelManagerError } from '../errors.ts';
import { currentProject } from '../request-context.ts';

/**
 * One client-side limiter shared by every Cloudflare call: at most `limit` requests in any sliding
 * window of `windowMs` (default 1,000 per 5 minutes, under Cloudflare's 1,200). Callers beyond the
 * budget wait their turn, first come first served; a wait longer than `maxWaitMs` is refused at once
 * with CLOUDFLARE_RATE_LIMITED and the time to wait, rather than holding a caller for minutes.
 * Clock and sleep are injectable, so tests never wait for real.
 */

export interface RateLimiterOptions {
  /** Requests per window; default 1000. */
  limit?: number;
  /** Default 300,000 ms (5 minutes). */
  windowMs?: number;
  /** Longest a caller may be queued; default 30,000 ms. */
  maxWaitMs?: number;
  /**
   * The part of the window (0 < share <= 1) one project may hold, so one project flooding cannot spend the budget
   * the others (and the service's own work) need; default 1 (no per-project cap). Work for no project is not capped.
   */
  projectShare?: number;
  /** Which project the current request is for (default: the request context of src/request-context.ts). */
  project?: () => string | null;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface RateLimiterStats {
  limit: number;
  windowMs: number;
  /** Requests granted within the current window (including ones queued for later). */
  inWindow: number;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Drops the grants at or before `cutoff` (the oldest come first). */
function dropBefore(granted: number[], cutoff: number): void {
  let first = granted[0];
  while (first !== undefined && first <= cutoff) {
    granted.shift();
    first = granted[0];
  }
}

/** The time of grant `index`, which the caller knows exists (it counted them). */
function grantAt(granted: readonly number[], index: number): number {
  const at = granted[index];
  if (at === undefined) throw new RangeError(`RateLimiter: no grant ${index} of ${granted.length}`);
  return at;
}

export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly maxWaitMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly projectLimit: number;
  private readonly project: () => string | null;
  /** Times at which requests were (or will be) let through, in order. */
  private readonly granted: number[] = [];
  /** The same, per project (work for no project is not listed). */
  private readonly grantedTo = new Map<string, number[]>();

  constructor(options: RateLimiterOptions = {}) {
    this.limit = options.limit ?? 1000;
    this.windowMs = options.windowMs ?? 300_000;
    this.maxWaitMs = options.maxWaitMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? realSleep;
    const share = options.projectShare ?? 1;
    if (!(share > 0 && share <= 1)) throw new RangeError(`RateLimiter projectShare must be above 0 and at most 1, got ${share}`);
    this.projectLimit = Math.max(1, Math.floor(this.limit * share));
    this.project = options.project ?? currentProject;
    if (!Number.isInteger(this.limit) || this.limit < 1) throw new RangeError(`RateLimiter limit must be a whole number >= 1, got ${this.limit}`);
    if (!(this.windowMs > 0)) throw new RangeError(`RateLimiter windowMs must be > 0, got ${this.windowMs}`);
  }

  /**
   * Reserves the next slot and returns how long to wait for it (0: go now), or throws
   * CLOUDFLARE_RATE_LIMITED without reserving when the wait would exceed `maxWaitMs`.
   */
  reserve(): number {
    const now = this.now();
    dropBefore(this.granted, now - this.windowMs);
    const project = this.project();
    const mine = project === null ? null : this.grantedTo.get(project) ?? [];
    if (mine !== null && project !== null) {
      dropBefore(mine, now - this.windowMs);
      if (mine.length >= this.projectLimit) {
        const seconds = Math.max(1, Math.ceil((grantAt(mine, mine.length - this.projectLimit) + this.windowMs - now) / 1000));
        throw new TunnelManagerError({
          code: 'CLOUDFLARE_RATE_LIMITED',
          message: `${project} has used its share of Tunnel Manager's Cloudflare budget (${this.projectLimit} of ${this.limit} requests per ${this.windowMs / 1000} s); the others keep theirs. The next slot for ${project} is in ${seconds} s.`,
          fix: `Retry after ${seconds} seconds, and make fewer calls that reach Cloudflare (requests and deletes, dry runs included). The operator sets the share with limits.cloudflareSharePercent.`,
          details: { retryAfterSeconds: seconds, source: 'project-share', project, projectLimit: this.projectLimit, limit: this.limit, windowSeconds: this.windowMs / 1000 },
        });
      }
    }
    const length = this.granted.length;
    const at = length < this.limit ? now : Math.max(now, grantAt(this.granted, length - this.limit) + this.windowMs);
    const wait = at - now;
    if (wait > this.maxWaitMs) {
      const seconds = Math.ceil(wait / 1000);
      throw new TunnelManagerError({
        code: 'CLOUDFLARE_RATE_LIMITED',
        message: `Tunnel Manager's own Cloudflare budget (${this.limit} requests per ${this.windowMs / 1000} s) is spent; the next slot is in ${seconds} s.`,
        fix: `Retry the same call after ${seconds} seconds. If this happens often, something is making too many requests: check the audit log for loops.`,
        details: { retryAfterSeconds: seconds, source: 'client', limit: this.limit, windowSeconds: this.windowMs / 1000 },
      });
    }
    this.granted.push(at);
    if (mine !== null && project !== null) {
      mine.push(at);
      this.grantedTo.set(project, mine);
    }
    return wait;
  }

  /** Waits until a request may be sent. */
  async acquire(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await this.sleep(wait);
  }

  stats(): RateLimiterStats {
    const now = this.now();
    return { limit: this.limit, windowMs: this.windowMs, inWindow: this.granted.filter((at) => at > now - this.windowMs).length };
  }
}
