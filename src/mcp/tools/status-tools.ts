import { z } from 'zod';
import { tunnelMachine } from '../../../machines/tunnel.machine.ts';
import { defineTool } from '../tool-definition.ts';

/** The leaf states of a machine, dotted as status shows them (`running.up`). */
function leafStates(node: { states?: Record<string, unknown> }, prefix = ''): string[] {
  const children = Object.entries(node.states ?? {});
  if (children.length === 0) return [prefix];
  return children.flatMap(([key, child]) => leafStates(child as { states?: Record<string, unknown> }, prefix === '' ? key : `${prefix}.${key}`));
}

/** Every state the tunnel actor can be in, and `unknown` before the service ever ran on this data directory. */
const TUNNEL_STATES: [string, ...string[]] = ['unknown', ...leafStates(tunnelMachine.root)];
const tunnelState = z.enum(TUNNEL_STATES).describe('the tunnel actor\'s state: running.up serves traffic; running.degraded serves with fewer connections; the others do not');

const probeSchema = z
  .object({
    at: z.number(),
    result: z.enum(['ok', 'degraded', 'failed']),
    readyConnections: z.number().nullable(),
    error: z.string().optional(),
  })
  .nullable();

export const statusSchema = z.object({
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
});

export const getStatus = defineTool({
  name: 'tunnel_get_status',
  title: 'Tunnel status',
  description:
    'The state of the Cloudflare Tunnel on this machine: state, pid, up since, restart count, ready connections, the last health probe, and the next start time while backing off.',
  input: z.object({}).strict(),
  output: statusSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { backend }) => backend.status(),
});

export const getMetrics = defineTool({
  name: 'tunnel_get_metrics',
  title: 'Tunnel metrics',
  description: "cloudflared's counters (total requests, request errors, responses by status code, HA connections) and health over the last 24 hours.",
  input: z.object({}).strict(),
  output: z.object({
    state: tunnelState,
    readyConnections: z.number().nullable(),
    haConnections: z.number().nullable(),
    totalRequests: z.number().nullable(),
    requestErrors: z.number().nullable(),
    responsesByCode: z.record(z.number()),
    health: z.object({ samples24h: z.number(), failedSamples24h: z.number(), uptimePct24h: z.number().nullable(), latencyAvgMs24h: z.number().nullable() }),
  }),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { backend }) => backend.metrics(),
});

export const restartTunnel = defineTool({
  name: 'tunnel_restart',
  title: 'Restart the tunnel',
  description: 'Restarts cloudflared now (graceful stop, then start), whatever state it is in, and answers with the status once it is running again.',
  input: z.object({}).strict(),
  output: statusSchema,
  // Destructive: every project's traffic is cut while cloudflared restarts.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  access: 'ms',
  handler: (_args, { backend, principal }) => backend.restartTunnel(principal),
});

export const ping = defineTool({
  name: 'tunnel_ping',
  title: 'Ping',
  description: 'Answers at once with the server time: a cheap check that the MCP session and your token work.',
  input: z.object({}).strict(),
  output: z.object({ pong: z.literal(true), time: z.string(), project: z.string() }),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { principal }) => ({ pong: true as const, time: new Date().toISOString(), project: principal.project }),
});

export const STATUS_TOOLS = [ping, getStatus, getMetrics, restartTunnel];
