import { z } from 'zod';
import { describedObject } from './arguments.ts';

/** tunnel_get_events' answer: the events after the caller's cursor, as the caller may read them. */
export const eventsSchema = describedObject(
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
  );
