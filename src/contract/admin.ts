import { z } from 'zod';
import { describedObject } from './arguments.ts';

/** What tunnel_rollback_config and supervisor_inspect answer; the backend's types are inferred from these schemas. */

export const rollbackSchema = describedObject(
  { commit: z.string(), restoredFrom: z.string(), newCommit: z.string().nullable(), reloaded: z.boolean() },
  {
    commit: 'the commit asked for',
    restoredFrom: 'its full id',
    newCommit: 'the commit that records the rollback (null when nothing changed)',
    reloaded: 'true when cloudflared was reloaded with it',
  },
);

export type RollbackView = z.infer<typeof rollbackSchema>;

export const inspectionSchema = describedObject(
  {
    snapshotAt: z.string().nullable(),
    machineVersion: z.string().nullable(),
    actors: z.array(
      describedObject(
        { path: z.string(), state: z.string(), status: z.string(), context: z.record(z.unknown()), effects: z.array(z.string()) },
        {
          path: 'the actor in the tree, e.g. supervisor/tunnel',
          state: 'its current state, e.g. running.up',
          status: "its run status as XState keeps it: active, done, error or stopped (unknown when the snapshot does not say)",
          context: 'the parts of its context that matter (secrets redacted)',
          effects: 'the effects it is running now (invoked actors)',
        },
      ),
    ),
    transitions: z.array(
      describedObject(
        { id: z.number(), ts: z.number(), time: z.string(), actorId: z.string(), eventType: z.string(), fromState: z.string().nullable(), toState: z.string() },
        {
          id: 'row id',
          ts: 'when, in milliseconds since the epoch',
          time: 'when (ISO 8601)',
          actorId: 'which actor',
          eventType: 'the event that caused it',
          fromState: 'the state before (null for the first)',
          toState: 'the state after',
        },
      ),
    ),
  },
  {
    snapshotAt: 'when the supervisor snapshot was last saved (ISO 8601)',
    machineVersion: 'the version of the machine definitions the snapshot belongs to',
    actors: 'every actor of the tree, root first',
    transitions: 'the most recent transitions, newest first',
  },
);

/** The persisted state of every actor and the recent transitions (supervisor_inspect, `tunnel-manager inspect`). */
export type InspectionReport = z.infer<typeof inspectionSchema>;

/** tunnel_get_audit's answer: audit rows, newest first. */
export const auditSchema = describedObject(
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
  );
