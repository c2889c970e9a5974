import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { rollbackSchema } from '../../../contract/admin.ts';

export const rollbackConfig = defineTool({
  name: 'tunnel_rollback_config',
  title: 'Roll the ingress config back',
  description: 'Restores config.yml as it was at a git commit (see the audit log or `tunnel-manager config history`), validated, written, committed and reloaded.',
  input: z
    .object({
      commit: z
        .string()
        .regex(/^[0-9a-f]{7,40}$/, 'a git commit id (7 to 40 hex digits)')
        .describe('the version of config.yml to restore: a git commit id of 7 to 40 lower-case hex digits, e.g. "3f7a6a1" (tunnel-manager config history lists them)'),
    })
    .strict(),
  output: rollbackSchema,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  access: 'ms',
  auditTarget: (args) => args.commit,
  handler: (args, { backend }) => backend.rollbackConfig(args.commit),
});
