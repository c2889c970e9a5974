import { z } from 'zod';
import { defineTool } from '../tool-definition.ts';

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
  output: z.object({ commit: z.string(), restoredFrom: z.string(), newCommit: z.string().nullable(), reloaded: z.boolean() }),
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
  output: z.object({
    entries: z.array(
      z.object({
        id: z.number(),
        time: z.string(),
        principal: z.string(),
        action: z.string(),
        target: z.string().nullable(),
        arguments: z.record(z.unknown()),
        outcome: z.enum(['ok', 'denied', 'error']).describe('ok; denied: not allowed (wrong project, role or token); error: it failed'),
        errorCode: z.string().nullable(),
        durationMs: z.number().nullable(),
        details: z.record(z.unknown()),
      }),
    ),
  }),
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
  output: z.object({
    snapshotAt: z.string().nullable(),
    machineVersion: z.string().nullable(),
    actors: z.array(
      z.object({
        path: z.string(),
        state: z.string(),
        status: z.string().describe("the actor's run status as XState keeps it: active, done, error or stopped (unknown when the snapshot does not say)"),
        context: z.record(z.unknown()),
        effects: z.array(z.string()),
      }),
    ),
    transitions: z.array(
      z.object({ id: z.number(), ts: z.number(), time: z.string(), actorId: z.string(), eventType: z.string(), fromState: z.string().nullable(), toState: z.string() }),
    ),
  }),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'ms',
  handler: (args, { backend }) => backend.inspect(args.limit),
});

export const ADMIN_TOOLS = [rollbackConfig, getAudit, inspectSupervisor];
