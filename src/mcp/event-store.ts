import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Messages kept per session for a client that reconnects; older ones are gone (it reads tunnel_get_events). */
export const RESUMABLE_MESSAGES = 100;
/**
 * And at most this much of their JSON text per session. Every answer to a tool call goes through the store, and one
 * page of 1,000 routes is 700 KB: kept as objects, a session's last 100 such answers held 100 MB (measured:
 * docs/performance.md, Memory with use). A message larger than this is sent but not kept.
 */
export const RESUMABLE_BYTES = 256 * 1024;

interface Stored {
  id: string;
  streamId: string;
  /** The message as JSON text: compact, one byte a character for ASCII, and parsed again only on a replay. */
  json: string;
}

/**
 * The length of the text content of a tool's answer (which carries the answer's JSON: the message is longer still),
 * 0 for any other message. A page of 1,000 routes is serialized once more by the transport to send it; serializing it
 * here as well only to drop it made 1.5 MB of garbage a call.
 */
function textLength(message: JSONRPCMessage): number {
  const result: unknown = 'result' in message ? message.result : undefined;
  const content: unknown = typeof result === 'object' && result !== null && 'content' in result ? result.content : undefined;
  if (!Array.isArray(content)) return 0;
  let length = 0;
  for (const item of content) if (typeof item === 'object' && item !== null && 'text' in item && typeof item.text === 'string') length += item.text.length;
  return length;
}

/**
 * What a session sent on its SSE streams, so that a client that lost its connection and comes back with
 * `Last-Event-ID` gets the messages it missed on that stream. One store per session, in memory (a session does not
 * outlive the process), bounded to the last RESUMABLE_MESSAGES messages and RESUMABLE_BYTES of them. Event ids are
 * `<streamId>:<n>`, so the stream of an id is known without a lookup.
 */
export class SessionEventStore implements EventStore {
  private readonly messages: Stored[] = [];
  private counter = 0;
  private bytes = 0;

  constructor(
    private readonly limit = RESUMABLE_MESSAGES,
    private readonly maxBytes = RESUMABLE_BYTES,
  ) {}

  /** The JSON text kept, in characters (what the bound is on). */
  get retainedBytes(): number {
    return this.bytes;
  }

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    this.counter += 1;
    const id = `${streamId}:${this.counter}`;
    // An answer that cannot be kept is not serialized to find out: its text content alone is too long.
    const json = textLength(message) > this.maxBytes ? null : JSON.stringify(message);
    if (json !== null && json.length <= this.maxBytes) {
      this.messages.push({ id, streamId, json });
      this.bytes += json.length;
    }
    while (this.messages.length > this.limit || this.bytes > this.maxBytes) {
      const dropped = this.messages.shift();
      if (dropped === undefined) break;
      this.bytes -= dropped.json.length;
    }
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
      await send(stored.id, JSONRPCMessageSchema.parse(JSON.parse(stored.json)));
    }
    return streamId;
  }
}
