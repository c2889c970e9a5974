import { z } from 'zod';
import { defineTool } from '../../tool-definition.ts';
import { eventsSchema } from '../../../contract/events.ts';

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
  output: eventsSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  // A project supervisor's events are its own and the broadcast ones; the meta-supervisor reads every project's.
  resource: () => ({ kind: 'project', project: undefined, mode: 'read' }),
  handler: (args, { backend, project, seeEvent }) => {
    const rows = backend.events(args.cursor, args.limit, project);
    const visible = rows.map(seeEvent).filter((row) => row !== null);
    return {
      events: visible.map((row) => ({ id: row.id, time: new Date(row.ts).toISOString(), kind: row.kind, project: row.project, data: row.data })),
      nextCursor: rows.at(-1)?.id ?? args.cursor,
    };
  },
});
