import { z } from 'zod';
import { defineTool } from '../tool-definition.ts';
import { describedObject } from '../../contract/arguments.ts';
import { metricsSchema, statusSchema } from '../../contract/status.ts';

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
  output: metricsSchema,
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
  output: describedObject(
    { pong: z.literal(true), time: z.string(), project: z.string() },
    { pong: 'always true', time: "the server's time (ISO 8601)", project: 'the project your token belongs to' },
  ),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { principal }) => ({ pong: true as const, time: new Date().toISOString(), project: principal.project }),
});

export const STATUS_TOOLS = [ping, getStatus, getMetrics, restartTunnel];
