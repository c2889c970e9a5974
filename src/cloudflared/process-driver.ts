/**
 * How the manager controls cloudflared, whatever runs it (a child process, a detached process with a
 * pidfile, a systemd unit, a Docker container). The tunnel machine reaches a driver only through the
 * actors that src/app injects with `machine.provide()`.
 */
export interface TunnelProcess {
  /** The OS pid (or the container's main pid); null when the runtime does not expose one. */
  pid: number | null;
  /** true when the process was already running and the driver took it over instead of starting it. */
  adopted: boolean;
  /** Driver-specific handle (container id, unit name…), for display. */
  handle?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: string | null;
  /** Plain-words reason, e.g. "exited with code 1" or "killed by SIGKILL". */
  reason: string;
}

export interface StopOutcome {
  /** How the process ended: it was not running, it exited after SIGTERM, or SIGKILL was needed. */
  how: 'not-running' | 'graceful' | 'killed';
  durationMs: number;
}

export interface ProcessDriver {
  readonly kind: 'child' | 'spawn' | 'systemd' | 'docker';
  /**
   * Starts cloudflared, or adopts the one already running (so it is idempotent: XState re-runs an
   * interrupted start after a restore). Resolves once the process is running; readiness is the probe's job.
   */
  start(): Promise<TunnelProcess>;
  /** Graceful stop: SIGTERM, wait up to `graceMs`, then SIGKILL. Idempotent: a stopped tunnel resolves at once. */
  stop(graceMs: number): Promise<StopOutcome>;
  /** The running process, or null. */
  current(): Promise<TunnelProcess | null>;
  /**
   * Calls `onExit` once when the given process ends (for a child, at once from its exit event; otherwise by polling).
   * Returns a function that stops watching.
   */
  watch(process: TunnelProcess, onExit: (exit: ProcessExit) => void): () => void;
}
