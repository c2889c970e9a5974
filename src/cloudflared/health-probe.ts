import type { HealthSample } from '../health-sample.ts';
import type { ProcessDriver } from './process-driver.ts';
import { errnoCodeOf, messageOf } from '../thrown.ts';
import { parsePrometheusText, sumSamples } from './prometheus-text.ts';
import { readyConnectionsIn } from './ready-endpoint.ts';

/**
 * One health probe of cloudflared: is the process there, does `/ready` on the metrics address answer 200,
 * how many connections are ready, and what `/metrics` counts.
 *
 * - `ok`: process running, /ready 200, at least `expectedConnections` ready connections;
 * - `degraded`: process running and ready, but fewer ready connections than expected;
 * - `failed`: no process, /ready unreachable, not 200, or no answer within the timeout.
 * A /metrics failure alone does not fail the probe (readiness is what serves traffic); it is noted in `error`.
 */
export interface HealthProbeOptions {
  driver: Pick<ProcessDriver, 'current'>;
  /** HOST:PORT of cloudflared's metrics server, or a function for drivers whose address moves (spawn reloads). */
  metricsAddress: string | (() => string);
  expectedConnections: number;
  timeoutMs: number;
  now?: () => number;
}

async function fetchWithin(url: string, deadline: number): Promise<Response> {
  const remaining = Math.max(1, deadline - Date.now());
  return fetch(url, { signal: AbortSignal.timeout(remaining), headers: { accept: 'application/json, text/plain' } });
}

function describeFailure(error: unknown, what: string, timeoutMs: number): string {
  const name = error instanceof Error ? error.name : undefined;
  if (name === 'TimeoutError' || name === 'AbortError') return `${what} did not answer within ${timeoutMs} ms`;
  const cause = error instanceof Error ? error.cause : undefined;
  const causeText = errnoCodeOf(cause) ?? (cause instanceof Error ? cause.message : undefined);
  return `${what} is unreachable (${causeText ?? messageOf(error)})`;
}

export async function probeTunnelHealth(options: HealthProbeOptions): Promise<HealthSample> {
  const now = options.now ?? Date.now;
  const ts = now();
  const sample: HealthSample = {
    ts,
    result: 'failed',
    pid: null,
    readyConnections: null,
    haConnections: null,
    totalRequests: null,
    requestErrors: null,
    latencyMs: null,
  };
  const running = await options.driver.current();
  if (running === null) {
    sample.error = 'cloudflared is not running';
    return sample;
  }
  sample.pid = running.pid;
  const address = typeof options.metricsAddress === 'function' ? options.metricsAddress() : options.metricsAddress;
  const deadline = Date.now() + options.timeoutMs;
  const started = performance.now();
  let ready: unknown;
  let status: number;
  try {
    const response = await fetchWithin(`http://${address}/ready`, deadline);
    status = response.status;
    ready = await response.json().catch(() => ({}));
    sample.latencyMs = Math.round((performance.now() - started) * 100) / 100;
  } catch (error) {
    sample.error = describeFailure(error, `/ready on ${address}`, options.timeoutMs);
    return sample;
  }
  sample.readyConnections = readyConnectionsIn(ready);
  if (status !== 200) {
    sample.error = `/ready on ${address} answered ${status} with ${sample.readyConnections ?? 'unknown'} ready connection(s)`;
    return sample;
  }

  try {
    const response = await fetchWithin(`http://${address}/metrics`, deadline);
    if (!response.ok) throw new Error(`answered ${response.status}`);
    const { samples } = parsePrometheusText(await response.text());
    sample.haConnections = sumSamples(samples, 'cloudflared_tunnel_ha_connections');
    sample.totalRequests = sumSamples(samples, 'cloudflared_tunnel_total_requests');
    sample.requestErrors = sumSamples(samples, 'cloudflared_tunnel_request_errors');
  } catch (error) {
    sample.error =
      error instanceof Error && error.message.startsWith('answered')
        ? `/metrics on ${address} ${error.message}`
        : describeFailure(error, `/metrics on ${address}`, options.timeoutMs);
  }

  const readyCount = sample.readyConnections ?? 0;
  if (readyCount < options.expectedConnections) {
    sample.result = 'degraded';
    sample.error ??= `${readyCount} of ${options.expectedConnections} expected connections are ready`;
  } else {
    sample.result = 'ok';
  }
  return sample;
}
