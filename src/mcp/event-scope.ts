import type { EventRow } from '../store/events-repository.ts';
import type { Principal } from '../contract/principal.ts';

/** The `project` of an event that concerns everyone. */
export const BROADCAST = '*';

/** Fields of a broadcast event that never name a route, a hostname or a hand-written rule. */
const PUBLIC_FIELDS = new Set(['path', 'resolution', 'policy', 'failedCommit', 'zone']);

/**
 * What a project supervisor may read of a broadcast event that is not about the tunnel itself: the fields that name
 * nothing of anyone else, and the number of items in each list (a broken config.yml lists other projects' hostnames;
 * the meta-supervisor reads them whole).
 */
function publicView(event: EventRow): Record<string, unknown> {
  if (event.kind.startsWith('tunnel.')) return event.data; // the shared tunnel's state: pids, reasons, delays
  const view: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event.data)) {
    if (Array.isArray(value)) view[`${key}Count`] = value.length;
    else if (PUBLIC_FIELDS.has(key)) view[key] = value;
  }
  view.detail = 'The names involved are for the meta-supervisor; this event tells you that it happened.';
  return view;
}

/**
 * The one rule for who reads which event, for `tunnel_get_events`, the events a session is sent as they happen, and
 * anything else that shows events: the meta-supervisor reads every event; a project supervisor reads its own
 * project's events whole and broadcast events without other projects' data; nothing else.
 */
export function eventFor(principal: Principal, event: EventRow): EventRow | null {
  if (principal.role === 'ms' || event.project === principal.project) return event;
  if (event.project !== BROADCAST) return null;
  return { ...event, data: publicView(event) };
}
