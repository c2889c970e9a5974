import type { AuditRow } from '../store/audit-repository.ts';

/** How long repeated denials of one kind from one place are counted before one row sums them up. */
export const DENIAL_WINDOW_MS = 60_000;
/** Distinct (principal, code, target) keys counted at once; beyond, denials are counted under target `*`. */
const MAX_KEYS = 1000;

interface Window {
  principal: string;
  errorCode: string;
  target: string;
  count: number;
}

/**
 * Audit rows for requests refused before any tool runs (no token, a bad token, a foreign Origin, another project's
 * session). The first denial of a kind from a place is written at once; the repeats within the window become one row
 * at its end (`details.repeated`), so a flood of bad requests costs a row per minute per source, not a row each.
 */
export class DenialAudit {
  private windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly write: (entry: Omit<AuditRow, 'id'>) => void,
    private readonly windowMs = DENIAL_WINDOW_MS,
  ) {
    this.timer = setInterval(() => this.flush(), windowMs);
    this.timer.unref();
  }

  deny(principal: string, errorCode: string, target: string | null, details: Record<string, unknown> = {}): void {
    let key = `${principal}\u0000${errorCode}\u0000${target ?? ''}`;
    let window = this.windows.get(key);
    if (!window && this.windows.size >= MAX_KEYS) {
      key = `${principal}\u0000${errorCode}\u0000*`;
      window = this.windows.get(key);
      target = '*';
    }
    if (window) {
      window.count += 1;
      return;
    }
    this.windows.set(key, { principal, errorCode, target: target ?? '', count: 0 });
    this.row(principal, errorCode, target, details);
  }

  /** Writes one row per key that was repeated in the window, and starts a new window. */
  flush(): void {
    const ended = this.windows;
    this.windows = new Map();
    for (const window of ended.values()) {
      if (window.count === 0) continue;
      this.row(window.principal, window.errorCode, window.target === '' ? null : window.target, {
        repeated: window.count,
        windowSeconds: this.windowMs / 1000,
      });
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private row(principal: string, errorCode: string, target: string | null, details: Record<string, unknown>): void {
    this.write({ ts: Date.now(), principal, action: 'mcp.connect', target, arguments: {}, outcome: 'denied', errorCode, durationMs: null, details });
  }
}
