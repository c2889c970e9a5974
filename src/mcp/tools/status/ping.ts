import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { pingSchema } from '../../../contract/status.ts';

export const ping = defineTool({
  name: 'tunnel_ping',
  title: 'Ping',
  description: 'Answers at once with the server time: a cheap check that the MCP session and your token work.',
  input: z.object({}).strict(),
  output: pingSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { actsFor }) => ({ pong: true as const, time: new Date().toISOString(), project: actsFor }),
});
