import { z } from 'zod';
import { tunnelMachine } from '../../machines/tunnel.machine.ts';
import { describedObject } from './arguments.ts';

/** What tunnel_get_status, tunnel_restart and tunnel_get_metrics answer; the backend's types are inferred from these schemas. */

/** The leaf states of a machine, dotted as status shows them (`running.up`). */
interface StateNode {
  states?: Record<string, StateNode>;
}

function leafStates(node: StateNode, prefix = ''): string[] {
  const children = Object.entries(node.states ?? {});
  if (children.length === 0) return [prefix];
  return children.flatMap(([key, child]) => leafStates(child, prefix === '' ? key : `${prefix}.${key}`));
}

/** Every state the tunnel actor can be in, and `unknown` before the service ever ran on this data directory. */
const TUNNEL_STATES: [string, ...string[]] = ['unknown', ...leafStates(tunnelMachine.root)];
const tunnelState = z.enum(TUNNEL_STATES);

const probeSchema = describedObject(
  {
    at: z.number(),
    result: z.enum(['ok', 'degraded', 'failed']),
    readyConnections: z.number().nullable(),
    error: z.string().optional(),
  },
  {
    at: 'when the probe ran, in milliseconds since the epoch',
    result: "ok: cloudflared answered /ready with connections; degraded: fewer than expected; failed: it did not answer",
    readyConnections: 'connections to the Cloudflare edge cloudflared reported (null when it did not answer)',
    error: 'why the probe failed, when it did',
  },
).nullable();

export const statusSchema = describedObject(
  {
    state: tunnelState,
    pid: z.number().nullable(),
    adopted: z.boolean().nullable(),
    upSince: z.string().nullable(),
    restartCount: z.number(),
    consecutiveFailures: z.number(),
    readyConnections: z.number().nullable(),
    lastProbe: probeSchema,
    lastOkProbeAt: z.string().nullable(),
    currentDelayMs: z.number(),
    nextStartAt: z.string().nullable(),
    lastError: z.string().nullable(),
    routes: z.number(),
    tunnelId: z.string(),
    asOf: z.string().nullable(),
  },
  {
    state: "the tunnel actor's state: running.up serves traffic; running.degraded serves with fewer connections; the others do not",
    pid: "cloudflared's process id (null when it is not running)",
    adopted: 'true when this manager found cloudflared already running and took it over instead of starting it',
    upSince: 'when the running cloudflared became ready (ISO 8601), null when it is not running',
    restartCount: 'restarts since the manager started',
    consecutiveFailures: 'failed starts or crashes in a row; the backoff grows with it and resets after a stable run',
    readyConnections: 'edge connections of the last probe while running (null otherwise)',
    lastProbe: 'the last health probe of cloudflared (null before the first)',
    lastOkProbeAt: 'when a probe last succeeded (ISO 8601)',
    currentDelayMs: 'the backoff wait before the next start, in milliseconds (0 when not backing off)',
    nextStartAt: 'when the next start is due while backing off (ISO 8601), else null',
    lastError: 'why the last start failed or cloudflared stopped, when it did',
    routes: 'active routes in the ledger',
    tunnelId: 'the Cloudflare Tunnel id',
    asOf: 'when the manager last saved this state (ISO 8601; what status shows when the manager is stopped)',
  },
);

/** The tunnel's status (tunnel_get_status, tunnel_restart, the tunnel://status resource, `tunnel-manager status`). */
export type TunnelStatus = z.infer<typeof statusSchema>;

export const metricsSchema = describedObject(
  {
    state: tunnelState,
    readyConnections: z.number().nullable(),
    haConnections: z.number().nullable(),
    totalRequests: z.number().nullable(),
    requestErrors: z.number().nullable(),
    responsesByCode: z.record(z.number()),
    health: describedObject(
      { samples24h: z.number(), failedSamples24h: z.number(), uptimePct24h: z.number().nullable(), latencyAvgMs24h: z.number().nullable() },
      {
        samples24h: 'health probes in the last 24 hours',
        failedSamples24h: 'of those, the ones that failed',
        uptimePct24h: 'share of probes that succeeded, in percent (null without samples)',
        latencyAvgMs24h: "average time cloudflared took to answer a probe, in milliseconds",
      },
    ),
  },
  {
    state: "the tunnel actor's state: running.up serves traffic; running.degraded serves with fewer connections; the others do not",
    readyConnections: 'edge connections cloudflared reports ready (null when it does not answer)',
    haConnections: "cloudflared's cloudflared_tunnel_ha_connections gauge",
    totalRequests: 'requests cloudflared proxied since it started (cloudflared_tunnel_total_requests)',
    requestErrors: 'of those, the ones that failed to reach the origin (cloudflared_tunnel_request_errors)',
    responsesByCode: 'responses by HTTP status code, e.g. { "200": 1520, "502": 3 }',
    health: 'the health probes of the last 24 hours',
  },
);

export type MetricsView = z.infer<typeof metricsSchema>;

/** tunnel_ping's answer. */
export const pingSchema = describedObject(
  { pong: z.literal(true), time: z.string(), project: z.string() },
  { pong: 'always true', time: "the server's time (ISO 8601)", project: 'the project your token belongs to' },
);
