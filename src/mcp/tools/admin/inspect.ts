import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { inspectionSchema } from '../../../contract/admin.ts';

export const inspectSupervisor = defineTool({
  name: 'supervisor_inspect',
  title: 'Inspect the actors',
  description: "Every actor's state (supervisor, tunnel, topology, ingress, route sagas), the context that matters, and recent transitions.",
  input: z.object({ limit: z.number().int().min(1).max(500).default(30).describe('how many recent transitions to include, 1 to 500 (default 30)') }).strict(),
  output: inspectionSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'ms',
  handler: (args, { backend }) => backend.inspect(args.limit),
});
