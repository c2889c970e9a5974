import type Dockerode from 'dockerode';
import { z } from 'zod';

/**
 * The Docker events stream, reduced to what the topology needs: which container or network
 * to look at again. The stream carries no full state, so each hint is followed by an inspect
 * (see TopologyTracker.applyChanges); after a reconnect the caller does a full resync instead,
 * since events missed while disconnected are gone.
 */

export interface TopologyChangeHint {
  kind: 'container' | 'network';
  /** Docker id of the container or network to inspect again. */
  id: string;
  /** The Docker action, e.g. `start`, `die`, `rename`, `destroy`, `connect`. */
  action: string;
}

const CONTAINER_ACTIONS = new Set(['create', 'start', 'stop', 'die', 'kill', 'pause', 'unpause', 'restart', 'rename', 'destroy', 'update']);
const NETWORK_ACTIONS = new Set(['create', 'destroy', 'remove']);
const MEMBERSHIP_ACTIONS = new Set(['connect', 'disconnect']);

/** The fields of an event on `GET /events` this module reads; a line that does not fit is not an event. */
const RawDockerEventSchema = z.object({
  Type: z.string().optional(),
  Action: z.string().optional(),
  Actor: z.object({ ID: z.string().optional(), Attributes: z.record(z.string()).optional() }).optional(),
});

type RawDockerEvent = z.infer<typeof RawDockerEventSchema>;

/** One line of the events stream as an event, or null when it is not JSON or not an event. */
function parseEventLine(line: string): RawDockerEvent | null {
  try {
    const parsed = RawDockerEventSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** What a raw Docker event means for the topology, or null when it means nothing (exec, health, images…). */
export function hintFromDockerEvent(event: RawDockerEvent): TopologyChangeHint | null {
  const action = event.Action ?? '';
  const id = event.Actor?.ID ?? '';
  if (event.Type === 'container' && CONTAINER_ACTIONS.has(action) && id !== '') return { kind: 'container', id, action };
  if (event.Type === 'network') {
    if (MEMBERSHIP_ACTIONS.has(action)) {
      const container = event.Actor?.Attributes?.container;
      return container ? { kind: 'container', id: container, action: `network-${action}` } : null;
    }
    if (NETWORK_ACTIONS.has(action) && id !== '') return { kind: 'network', id, action };
  }
  return null;
}

export interface EventWatch {
  stop(): void;
}

export interface WatchHandlers {
  /** Unix seconds: replay events from then on (Docker keeps a short backlog). */
  since?: number | undefined;
  onHint(hint: TopologyChangeHint): void;
  /** The stream ended or failed; events from now on are lost until a new watch and a full resync. */
  onClosed(error: Error | null): void;
}

/** Follows `GET /events` for containers and networks. Calls `onClosed` exactly once. */
export function watchDockerEvents(docker: Dockerode, handlers: WatchHandlers): EventWatch {
  let stopped = false;
  let closed = false;
  let stream: NodeJS.ReadableStream | null = null;
  const close = (error: Error | null) => {
    if (closed) return;
    closed = true;
    if (!stopped) handlers.onClosed(error);
  };

  docker.getEvents({
    filters: { type: ['container', 'network'] },
    ...(handlers.since === undefined ? {} : { since: handlers.since }),
  }).then(
    (events) => {
      stream = events;
      if (stopped) {
        destroy(events);
        return;
      }
      let buffer = '';
      events.on('data', (chunk: Buffer | string) => {
        buffer += chunk.toString();
        let newline = buffer.indexOf('\n');
        while (newline >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          newline = buffer.indexOf('\n');
          if (line === '') continue;
          const parsed = parseEventLine(line);
          if (parsed === null) continue;
          const hint = hintFromDockerEvent(parsed);
          if (hint !== null && !stopped) handlers.onHint(hint);
        }
      });
      events.on('error', (error: Error) => close(error));
      events.on('end', () => close(null));
      events.on('close', () => close(null));
    },
    (error: unknown) => close(error instanceof Error ? error : new Error(String(error))),
  );

  return {
    stop() {
      stopped = true;
      if (stream !== null) destroy(stream);
    },
  };
}

function destroy(stream: NodeJS.ReadableStream): void {
  if ('destroy' in stream && typeof stream.destroy === 'function') stream.destroy();
}
