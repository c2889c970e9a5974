import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { RESUMABLE_BYTES, SessionEventStore } from '../../../src/mcp/event-store.ts';

/** A tool call's answer as the SDK hands it to the store: a page of `routes` routes, structured and as text. */
function answer(id: number, routes: number): JSONRPCMessage {
  const structured = {
    routes: Array.from({ length: routes }, (_, i) => ({
      hostname: `bench-${String(i).padStart(4, '0')}.153.se`,
      project: 'consilio',
      targetPort: 3100 + (i % 100),
      service: `http://localhost:${3100 + (i % 100)}`,
      status: 'active',
      targetReason: 'cloudflared runs on the host and the service listens on a host port: localhost reaches it',
      createdAt: new Date(1_700_000_000_000 + i).toISOString(),
    })),
    count: routes,
  };
  return { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured } };
}

const notification = (n: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: { kind: 'tunnel.down', n } } });

async function replay(store: SessionEventStore, lastEventId: string): Promise<string[]> {
  const sent: string[] = [];
  await store.replayEventsAfter(lastEventId, { send: (id) => Promise.resolve(void sent.push(id)) });
  return sent;
}

describe('the resumable-stream store of a session', () => {
  it('replays what a stream sent after the last id seen, in order, none twice, and nothing of other streams', async () => {
    const store = new SessionEventStore();
    const ids: string[] = [];
    for (let n = 0; n < 5; n += 1) ids.push(await store.storeEvent(n % 2 === 0 ? 'get' : 'post-1', notification(n)));
    expect(ids).toEqual(['get:1', 'post-1:2', 'get:3', 'post-1:4', 'get:5']);
    expect(await replay(store, 'get:1')).toEqual(['get:3', 'get:5']);
    expect(await replay(store, 'post-1:2')).toEqual(['post-1:4']);
    const messages: JSONRPCMessage[] = [];
    await store.replayEventsAfter('get:3', { send: (_id, message) => Promise.resolve(void messages.push(message)) });
    expect(messages).toEqual([notification(4)]);
  });

  it('keeps the last 100 messages and at most RESUMABLE_BYTES of them; an answer larger than that is sent but not kept', async () => {
    const store = new SessionEventStore();
    for (let n = 1; n <= 150; n += 1) await store.storeEvent('get', notification(n));
    expect(await replay(store, 'get:0')).toHaveLength(100);
    expect((await replay(store, 'get:0'))[0]).toBe('get:51');

    const big = await store.storeEvent('post-2', answer(7, 1000));
    expect(await replay(store, 'post-2:0')).toEqual([]);
    expect(big).toBe('post-2:151');
    for (let n = 0; n < 40; n += 1) await store.storeEvent('post-3', answer(n, 100));
    expect(store.retainedBytes).toBeLessThanOrEqual(RESUMABLE_BYTES);
    const kept = await replay(store, 'post-3:0');
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.at(-1)).toBe('post-3:191');
  });

  it('100 answers of 1,000 routes leave the heap within a few MB (they held about 100 MB as objects)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const store = new SessionEventStore();
    gc();
    const before = getHeapStatistics().used_heap_size;
    for (let n = 0; n < 100; n += 1) await store.storeEvent(`post-${n}`, answer(n, 1000));
    gc();
    const grownMb = (getHeapStatistics().used_heap_size - before) / 2 ** 20;
    expect(grownMb).toBeLessThan(5);
    expect(store.retainedBytes).toBeLessThanOrEqual(RESUMABLE_BYTES);
  });
});
