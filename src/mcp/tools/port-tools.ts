import { z } from 'zod';
import { TunnelManagerError } from '../../errors.ts';
import { defineTool } from '../tool-definition.ts';
import { describedObject, portArgument as port } from '../../contract/arguments.ts';

const allocation = describedObject(
  { port: z.number(), project: z.string(), purpose: z.string(), allocatedAt: z.string() },
  { port: 'the allocated port', project: 'the project it belongs to', purpose: 'what runs on it, as given', allocatedAt: 'when it was allocated (ISO 8601)' },
);

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
  handler: (args, { backend, project }) => {
    const result = backend.ports.allocate(project!, args.purpose, args.port);
    return { ...result, allocatedAt: new Date(result.allocatedAt).toISOString() };
  },
});

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
  handler: (args, { backend, project }) => {
    const inUse = backend.listRoutes({ project: project! }).find((route) => route.targetPort === args.port);
    if (inUse) {
      throw new TunnelManagerError({
        code: 'PORT_TAKEN',
        message: `Port ${args.port} is still the target of ${inUse.hostname}.`,
        fix: `Delete the route first: tunnel_delete_cname { "hostname": "${inUse.hostname}" }.`,
        details: { port: args.port, hostname: inUse.hostname },
      });
    }
    backend.ports.release(project!, args.port);
    return { port: args.port, released: true };
  },
});

export const listPorts = defineTool({
  name: 'port_list',
  title: 'List ports',
  description: 'Your allocated ports with their purposes and your range (the meta-supervisor sees all, or one project).',
  input: z.object({ project: z.string().max(63).optional().describe("meta-supervisor only: one project's ports; a project supervisor always sees its own") }).strict(),
  output: describedObject(
    {
      range: describedObject({ from: z.number(), to: z.number() }, { from: 'first port of the range', to: 'last port of the range' }).nullable(),
      allocations: z.array(allocation),
    },
    {
      range: "the project's port range (null when the meta-supervisor lists all projects)",
      allocations: 'the allocated ports, lowest first',
    },
  ),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  resource: (args) => ({ kind: 'project', project: args.project, mode: 'read' }),
  handler: (_args, { backend, project }) => {
    const allocations = backend.ports.list(project).map((a) => ({ ...a, allocatedAt: new Date(a.allocatedAt).toISOString() }));
    return { range: project === undefined ? null : backend.ports.rangeOf(project), allocations };
  },
});

export const PORT_TOOLS = [allocatePort, releasePort, listPorts];
