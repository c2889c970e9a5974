import { z } from 'zod';
import { eventFor } from '../authorization.ts';
import { defineTool } from '../tool-definition.ts';
import { describedObject } from '../../contract/arguments.ts';

export const getEvents = defineTool({
  name: 'tunnel_get_events',
  title: 'Events since a cursor',
  description:
    'Tunnel down/degraded/recovered, your route changes and broken targets, oldest first, after `cursor` (the id of the last event you saw; 0 for all). ' +
    'Keep `nextCursor` and pass it next time: nothing is missed while you were offline.',
  input: z
    .object({
      cursor: z.number().int().min(0).default(0).describe('the id of the last event you saw (the nextCursor of your previous call); 0 for everything kept'),
      limit: z.number().int().min(1).max(500).default(100).describe('events per call, 1 to 500 (default 100)'),
    })
    .strict(),
  output: describedObject(
    {
      events: z.array(
        describedObject(
          { id: z.number(), time: z.string(), kind: z.string(), project: z.string(), data: z.record(z.unknown()) },
          {
            id: "the event's id: the cursor to pass next time",
            time: 'when it happened (ISO 8601)',
            kind: 'what happened, e.g. tunnel.down, tunnel.recovered, route.created, route.failed, route.orphaned',
            project: 'the project it concerns, or "*" for everyone',
            data: 'the details of this kind of event (hostname, reason, error, fix…)',
          },
        ),
      ),
      nextCursor: z.number(),
    },
    { events: 'the events after your cursor, oldest first', nextCursor: 'pass as `cursor` next time (your cursor again when nothing is new)' },
  ),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  // A project supervisor's events are its own and the broadcast ones; the meta-supervisor reads every project's.
  resource: () => ({ kind: 'project', project: undefined, mode: 'read' }),
  handler: (args, { backend, principal, project }) => {
    const rows = backend.events(args.cursor, args.limit, project);
    const visible = rows.map((row) => eventFor(principal, row)).filter((row) => row !== null);
    return {
      events: visible.map((row) => ({ id: row.id, time: new Date(row.ts).toISOString(), kind: row.kind, project: row.project, data: row.data })),
      nextCursor: rows.at(-1)?.id ?? args.cursor,
    };
  },
});

export const EVENT_TOOLS = [getEvents];
