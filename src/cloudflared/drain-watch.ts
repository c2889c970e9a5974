import { parsePrometheusText } from './prometheus-text.ts';
import { readyConnectionsIn } from './ready-endpoint.ts';

/**
 * Whether a cloudflared that was told to stop (SIGTERM) has nothing left to do: every connection unregistered
 * (`/ready` says 0) and no request in flight (`cloudflared_tunnel_concurrent_requests_per_tunnel` is 0). cloudflared
 * itself stays up for its whole `--grace-period` unless the edge closes its connections, and one that was stopped
 * moments after it started first opens its remaining connections (one second apart) before it lets them go: a second
 * signal, which cloudflared takes as "exit now", ends it once this holds. False when it cannot tell.
 */
/** Whether a stopping cloudflared has unregistered every connection (`/ready` says 0): the edge sends it nothing new. */
export async function hasUnregistered(metricsAddress: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    const ready: unknown = await (await fetch(`http://${metricsAddress}/ready`, { signal: AbortSignal.timeout(timeoutMs) })).json();
    return readyConnectionsIn(ready) === 0;
  } catch {
    return false;
  }
}

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
