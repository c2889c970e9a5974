import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Messages kept per session for a client that reconnects; older ones are gone (it reads tunnel_get_events). */
export const RESUMABLE_MESSAGES = 100;

interface Stored {
  id: string;
  streamId: string;
  message: JSONRPCMessage;
}

/**
 * What a session sent on its SSE streams, so that a client that lost its connection and comes back with
 * `Last-Event-ID` gets the messages it missed on that stream. One store per session, in memory (a session does not
 * outlive the process), bounded to the last RESUMABLE_MESSAGES messages. Event ids are `<streamId>:<n>`, so the
 * stream of an id is known without a lookup.
 */
export class SessionEventStore implements EventStore {
  private readonly messages: Stored[] = [];
  private counter = 0;

  constructor(private readonly limit = RESUMABLE_MESSAGES) {}

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    this.counter += 1;
    const id = `${streamId}:${this.counter}`;
    this.messages.push({ id, streamId, message });
    if (this.messages.length > this.limit) this.messages.splice(0, this.messages.length - this.limit);
    return Promise.resolve(id);
  }

  getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const at = eventId.lastIndexOf(':');
    return Promise.resolve(at > 0 && /^\d+$/.test(eventId.slice(at + 1)) ? eventId.slice(0, at) : undefined);
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const streamId = (await this.getStreamIdForEventId(lastEventId)) ?? '';
    const after = Number(lastEventId.slice(lastEventId.lastIndexOf(':') + 1));
    for (const stored of this.messages) {
      if (stored.streamId !== streamId) continue;
      if (Number(stored.id.slice(stored.id.lastIndexOf(':') + 1)) <= after) continue;
      await send(stored.id, stored.message);
    }
    return streamId;
  }
}
