import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { metricsSchema } from '../../../contract/status.ts';

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
