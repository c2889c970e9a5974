import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { describedObject } from '../../../contract/arguments.ts';
import { allocationSchema as allocation } from '../../../contract/ports.ts';

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
