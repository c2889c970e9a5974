import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { deleteResultSchema } from '../../../contract/routes.ts';

export const deleteCname = defineTool({
  name: 'tunnel_delete_cname',
  title: 'Unpublish a service',
  description:
    'Removes a route you own: its ingress rule (with a reload) and its DNS record (only a record tunnel-manager created), then the ledger entry. ' +
    'The meta-supervisor may remove any route.',
  input: z.object({ hostname: z.string().min(1).max(253).describe('e.g. "app.153.se"') }).strict(),
  output: deleteResultSchema,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  access: 'any',
  resource: (args) => ({ kind: 'route', hostname: args.hostname }),
  auditTarget: (args) => args.hostname,
  handler: (args, { backend, progress }) => backend.deleteCname(args.hostname, progress ? { progress } : {}),
});
