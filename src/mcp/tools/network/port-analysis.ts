import { z } from 'zod';
import { defineTool, type Tool } from '../../tool-definition.ts';
import { portArgument as port } from '../../../contract/arguments.ts';
import { connectivitySchema } from '../../../contract/network.ts';

/** The two tools over one port's analysis: the same argument, answer and scope, a different question. */
export function portAnalysisTool(spec: { name: string; title: string; description: string; ask: 'checkConnectivity' | 'recommendConfig' }): Tool {
  return defineTool({
    name: spec.name,
    title: spec.title,
    description: spec.description,
    input: z.object({ targetPort: port.describe('one of your allocated ports, e.g. 3100') }).strict(),
    output: connectivitySchema,
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    access: 'any',
    // A project supervisor's own ports; any port for the meta-supervisor (the policy decides: project null).
    resource: (args) => ({ kind: 'port', port: args.targetPort, use: 'inspect' }),
    auditTarget: (args) => String(args.targetPort),
    handler: (args, { backend, project }) => backend[spec.ask](project ?? null, args.targetPort),
  });
}
