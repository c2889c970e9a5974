import type { Logger } from 'pino';
import type { StopOutcome } from '../process-driver.ts';
import { isProcessRunning } from '../process-identity.ts';
import { parsePrometheusText } from '../prometheus-text.ts';
import { readyConnectionsIn } from '../ready-endpoint.ts';

/** Whether a stopping cloudflared has unregistered every connection (`/ready` says 0): the edge sends it nothing new. */
export async function hasUnregistered(metricsAddress: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    const ready: unknown = await (await fetch(`http://${metricsAddress}/ready`, { signal: AbortSignal.timeout(timeoutMs) })).json();
    return readyConnectionsIn(ready) === 0;
  } catch {
    return false;
  }
}

/**
 * Whether a cloudflared that was told to stop (SIGTERM) has nothing left to do: every connection unregistered
 * (`/ready` says 0) and no request in flight (`cloudflared_tunnel_concurrent_requests_per_tunnel` is 0). cloudflared
 * itself stays up for its whole `--grace-period` unless the edge closes its connections, and one that was stopped
 * moments after it started first opens its remaining connections (one second apart) before it lets them go: a second
 * signal, which cloudflared takes as "exit now", ends it once this holds. False when it cannot tell.
 */
export async function isIdleAfterStop(metricsAddress: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    if (!(await hasUnregistered(metricsAddress, timeoutMs))) return false;
    const signal = AbortSignal.timeout(timeoutMs);
    const metrics = parsePrometheusText(await (await fetch(`http://${metricsAddress}/metrics`, { signal })).text());
    const inFlight = metrics.samples.find((sample) => sample.name === 'cloudflared_tunnel_concurrent_requests_per_tunnel');
    return inFlight !== undefined && inFlight.value === 0;
  } catch {
    return false;
  }
}

/** Resolves once `pid` reports no registered connection (or has ended, or `timeoutMs` passed). */
export async function untilUnregistered(pid: number, metricsAddress: string, ended: Promise<StopOutcome>, timeoutMs: number): Promise<void> {
  let over = false;
  void ended.then(() => (over = true));
  const deadline = Date.now() + timeoutMs;
  while (!over && isProcessRunning(pid) && Date.now() < deadline) {
    if (await hasUnregistered(metricsAddress)) return;
    await new Promise((resolve) => setTimeout(resolve, 20).unref());
  }
}

/** Sends the second signal once the stopping process is idle twice in a row (250 ms apart), unless it ended first. */
export async function endWhenIdle(pid: number, metricsAddress: string, ended: Promise<StopOutcome>, logger?: Logger): Promise<void> {
  let over = false;
  void ended.then(() => (over = true));
  let idleInARow = 0;
  while (!over && isProcessRunning(pid)) {
    await new Promise((resolve) => setTimeout(resolve, 250).unref());
    if (over) return;
    idleInARow = (await isIdleAfterStop(metricsAddress)) ? idleInARow + 1 : 0;
    if (idleInARow < 2 || over) continue;
    logger?.info({ pid }, 'the old cloudflared has unregistered and has nothing in flight: ending it now');
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // ended meanwhile
    }
    return;
  }
}
