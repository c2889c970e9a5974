import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { portArgument as port } from '../../../contract/arguments.ts';
import { allocationSchema as allocation } from '../../../contract/ports.ts';

export const allocatePort = defineTool({
  name: 'port_allocate',
  title: 'Allocate a port',
  description: "Reserves a port of your project's range for a service (the given one, or the next free one) and answers the port. Routes may only target your allocated ports.",
  input: z
    .object({
      port: port.optional().describe('a free port of your range to take, e.g. 3150; leave out for the lowest free one'),
      purpose: z
        .string()
        .min(1, 'say what the port is for')
        .max(200)
        .regex(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/, 'one line of text, no control characters')
        .describe('what runs on the port, one line (1 to 200 characters), e.g. "web frontend"'),
      project: z.string().max(63).optional().describe('meta-supervisor only: allocate for another project'),
    })
    .strict(),
  output: allocation,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  access: 'any',
  resource: (args) => ({ kind: 'project', project: args.project, mode: 'act' }),
  auditTarget: (args) => (args.port === undefined ? null : String(args.port)),
  handler: (args, { backend, actsFor }) => {
    const result = backend.ports.allocate(actsFor, args.purpose, args.port);
    return { ...result, allocatedAt: new Date(result.allocatedAt).toISOString() };
  },
});
