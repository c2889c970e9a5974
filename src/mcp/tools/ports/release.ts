import { z } from 'zod';
import { TunnelManagerError } from '../../../errors.ts';
import { defineTool } from '../../tool-definition.ts';
import { describedObject, portArgument as port } from '../../../contract/arguments.ts';

export const releasePort = defineTool({
  name: 'port_release',
  title: 'Release a port',
  description: 'Gives a port back. Refused while a route still targets it (delete the route first).',
  input: z.object({ port: port.describe('the allocated port to give back'), project: z.string().max(63).optional().describe('meta-supervisor only: the project the port belongs to') }).strict(),
  output: describedObject({ port: z.number(), released: z.boolean() }, { port: 'the port given back', released: 'true: it is free for the project again' }),
  // Idempotent: releasing a released port again changes nothing (it answers PORT_NOT_OWNED).
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  resource: (args) => ({ kind: 'project', project: args.project, mode: 'act' }),
  auditTarget: (args) => String(args.port),
  handler: (args, { backend, actsFor }) => {
    const inUse = backend.listRoutes({ project: actsFor }).find((route) => route.targetPort === args.port);
    if (inUse) {
      throw new TunnelManagerError({
        code: 'PORT_TAKEN',
        message: `Port ${args.port} is still the target of ${inUse.hostname}.`,
        fix: `Delete the route first: tunnel_delete_cname { "hostname": "${inUse.hostname}" }.`,
        details: { port: args.port, hostname: inUse.hostname },
      });
    }
    backend.ports.release(actsFor, args.port);
    return { port: args.port, released: true };
  },
});
