/** What one health probe of cloudflared found (src/cloudflared/health-probe.ts measures it, the store keeps it). */
export type HealthResult = 'ok' | 'degraded' | 'failed';

export interface HealthSample {
  ts: number;
  result: HealthResult;
  pid: number | null;
  readyConnections: number | null;
  haConnections: number | null;
  totalRequests: number | null;
  requestErrors: number | null;
  /** Time for /ready to answer, in ms (null when it did not). */
  latencyMs: number | null;
  error?: string;
}
