import { describe, expect, it } from 'vitest';
import { createWebSocketReceiver } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { waitUntil } from '../helpers/cli.ts';
import { startTestService } from '../helpers/service.ts';
import { freePort } from '../helpers/standin-cloudflared.ts';

/**
 * TM_INSPECT (here the `inspectUrl` option it sets): the live actors go to a Stately inspector. A local inspector
 * server relays what the manager sends to every other client; a receiver connected to it sees the actors.
 */


describe('the Stately inspector hook', () => {
  it('sends the live actors and their snapshots to the inspector at the address given', async () => {
    const port = await freePort();
    const inspectorServer = createInspectorServer({ port, autoOpen: false });
    const seen: { type: string; sessionId?: string; event?: { type?: string } }[] = [];
    const receiver = createWebSocketReceiver({ server: `ws://127.0.0.1:${port}` });
    const subscription = receiver.subscribe((event) => seen.push(event));
    const env = await startTestService({}, { inspectUrl: `ws://127.0.0.1:${port}` });
    try {
      await waitUntil(() => seen.some((event) => event.type === '@xstate.actor') || undefined, 15_000, 'the inspector to hear of the actors');
      await waitUntil(() => seen.some((event) => event.type === '@xstate.snapshot') || undefined, 15_000, 'a snapshot');
      const actors = new Set(seen.filter((event) => event.type === '@xstate.actor').map((event) => event.sessionId));
      expect(actors.size).toBeGreaterThanOrEqual(2);
    } finally {
      subscription.unsubscribe();
      await env.stop();
      inspectorServer.stop();
    }
  }, 60_000);

  it('refuses an address that is not a WebSocket URL, with the fix', async () => {
    await expect(startTestService({}, { inspectUrl: 'localhost:8080' })).rejects.toMatchObject({ code: 'INPUT_INVALID', fix: expect.stringContaining('ws://') });
  });
});
