import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { statusSchema } from '../../../contract/status.ts';

export const restartTunnel = defineTool({
  name: 'tunnel_restart',
  title: 'Restart the tunnel',
  description: 'Restarts cloudflared now (graceful stop, then start), whatever state it is in, and answers with the status once it is running again.',
  input: z.object({}).strict(),
  output: statusSchema,
  // Destructive: every project's traffic is cut while cloudflared restarts.
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  access: 'ms',
  handler: (_args, { backend, actsFor }) => backend.restartTunnel(actsFor),
});
