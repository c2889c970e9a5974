import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { statusSchema } from '../../../contract/status.ts';

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
