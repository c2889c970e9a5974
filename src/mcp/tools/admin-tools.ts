import { z } from 'zod';
import { defineTool } from '../tool-definition.ts';
import { describedObject } from '../../contract/arguments.ts';
import { inspectionSchema, rollbackSchema } from '../../contract/admin.ts';

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
  handler: (args, { backend, principal }) => backend.rollbackConfig(principal, args.commit),
});

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
  output: describedObject(
    {
      entries: z.array(
        describedObject(
          {
            id: z.number(),
            time: z.string(),
            principal: z.string(),
            action: z.string(),
            target: z.string().nullable(),
            arguments: z.record(z.unknown()),
            outcome: z.enum(['ok', 'denied', 'error']),
            errorCode: z.string().nullable(),
            durationMs: z.number().nullable(),
            details: z.record(z.unknown()),
          },
          {
            id: "the row's id: pass it as `before` to page back",
            time: 'when (ISO 8601)',
            principal: 'who: a project, "unauthenticated", or "system" for the manager itself',
            action: 'what: a tool name, mcp.connect, or a change the manager made (route.expired, ingress.drift…)',
            target: 'on what: a hostname, a port, a commit (tokens redacted)',
            arguments: 'the arguments, secrets redacted',
            outcome: 'ok; denied: not allowed (wrong project, role or token); error: it failed',
            errorCode: 'the error code when it did not succeed',
            durationMs: 'how long it took, in milliseconds',
            details: 'more about it (the error details, repeated denials counted…), secrets redacted',
          },
        ),
      ),
    },
    { entries: 'audit rows, newest first' },
  ),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'ms',
  handler: (args, { backend }) => ({
    entries: backend
      .audit({ limit: args.limit, ...(args.principal ? { principal: args.principal } : {}), ...(args.before ? { before: args.before } : {}) })
      .map(({ ts, ...row }) => ({ ...row, time: new Date(ts).toISOString() })),
  }),
});

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

export const ADMIN_TOOLS = [rollbackConfig, getAudit, inspectSupervisor];
