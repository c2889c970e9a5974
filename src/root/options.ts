import type { Logger } from 'pino';

/** How `serve` (and the tests) start the tunnel manager; all but the logger override the configuration. */
export interface TunnelManagerOptions {
  logger: Logger;
  /** MCP over HTTP at this HOST:PORT instead of config.mcp.listen (port 0: any free port). */
  mcpListen?: string;
  /** MCP over stdio for this project instead of HTTP. */
  stdioProject?: string;
  /** Overrides `mcp.sessionIdleMinutes` (tests use a short one). */
  mcpSessionIdleMs?: number;
  /** Sandbox only: where the local edge listens (port 0: any free port). */
  edgeListen?: string;
  /** Route sagas wait this long for the tunnel to be ready after a reload. */
  tunnelReadyTimeoutMs?: number;
  /** When a delete that could not delete its DNS record is retried, after each failure (default DELETE_RETRY_DELAYS_MS). */
  deleteRetryDelaysMs?: readonly number[];
  /** Overrides `backup.intervalHours` (tests use a short one). */
  backupIntervalMs?: number;
  /** Overrides `metrics.listen` (HOST:PORT, or `off`). */
  metricsListen?: string;
  /** A Stately inspector to send the live actors to (default: the TM_INSPECT environment variable; none when unset). */
  inspectUrl?: string;
}
