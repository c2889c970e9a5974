import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { auditSchema } from '../../../contract/admin.ts';

export const getAudit = defineTool({
  name: 'tunnel_get_audit',
  title: 'Audit log',
  description: 'Every tool call and change, allowed or denied, newest first: who, what, outcome, error code, duration.',
  input: z
    .object({
      limit: z.number().int().min(1).max(1000).default(100).describe('rows per call, 1 to 1000 (default 100)'),
      principal: z.string().max(63).optional().describe('only the rows of this caller: a project name, "unauthenticated", or "system" for the manager itself'),
      before: z.number().int().min(1).optional().describe('an audit id, to page back'),
    })
    .strict(),
  output: auditSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'ms',
  handler: (args, { backend }) => ({
    entries: backend
      .audit({ limit: args.limit, ...(args.principal ? { principal: args.principal } : {}), ...(args.before ? { before: args.before } : {}) })
      .map(({ ts, ...row }) => ({ ...row, time: new Date(ts).toISOString() })),
  }),
});
