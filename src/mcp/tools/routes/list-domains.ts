import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { domainsSchema } from '../../../contract/routes.ts';

export const listDomains = defineTool({
  name: 'tunnel_list_domains',
  title: 'List domains',
  description: 'The zones of the Cloudflare account on which routes can be published; the default one is used when a request names no domain.',
  input: z.object({}).strict(),
  output: domainsSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { backend }) => ({ domains: backend.listDomains() }),
});
