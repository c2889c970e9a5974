import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, emit, fromPromise, setup } from 'xstate';
import { ask } from '../../../src/actor-ask.ts';
import { TunnelManagerError } from '../../../src/errors.ts';

/** The one "send a request, wait for its answer" helper: answers read from emitted events or snapshots, a timeout in our error shape. */

const echo = setup({
  types: { events: {} as { type: 'PING'; id: string } | { type: 'GO' }, emitted: {} as { type: 'pong'; id: string } },
}).createMachine({
  initial: 'idle',
  states: {
    idle: {
      on: {
        PING: { actions: emit(({ event }) => ({ type: 'pong' as const, id: event.id })) },
        GO: 'gone',
      },
    },
    gone: {},
  },
});

const timeout = (ms: number) => ({
  ms,
  error: () => new TunnelManagerError({ code: 'CALL_TIMED_OUT', message: `no answer within ${ms} ms`, fix: 'Retry.' }),
});

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('ask', () => {
  it('answers with the emitted event that belongs to this request, ignoring others', async () => {
    const actor = createActor(echo).start();
    const other = ask(actor, { type: 'PING', id: 'b' }, { emitted: (event) => (event.id === 'never' ? { value: event.id } : undefined) }, timeout(50));
    const answer = ask(actor, { type: 'PING', id: 'a' }, { emitted: (event) => (event.id === 'a' ? { value: event.id } : undefined) }, null);
    await expect(answer).resolves.toBe('a');
    const late = expect(other).rejects.toBeInstanceOf(TunnelManagerError);
    await vi.advanceTimersByTimeAsync(50);
    await late;
  });

  it('answers from a snapshot reached after the request', async () => {
    const actor = createActor(echo).start();
    const answer = ask(actor, { type: 'GO' }, { snapshot: (snapshot) => (snapshot.value === 'gone' ? { value: 'gone' } : undefined) }, null);
    await expect(answer).resolves.toBe('gone');
  });

  it('a timeout rejects with our error shape, and nothing keeps listening', async () => {
    const actor = createActor(echo).start();
    let reads = 0;
    const read = (): undefined => {
      reads += 1;
      return undefined;
    };
    const answer = ask(actor, null, { emitted: read }, timeout(20));
    const timedOut = expect(answer).rejects.toMatchObject({ code: 'CALL_TIMED_OUT', fix: 'Retry.' });
    await vi.advanceTimersByTimeAsync(19);
    actor.send({ type: 'PING', id: 'in time' });
    expect(reads).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await timedOut;
    actor.send({ type: 'PING', id: 'late' });
    expect(reads).toBe(1);
  });

  it('the actor failing rejects with its error', async () => {
    const failing = createActor(
      setup({ actors: { broken: fromPromise<void>(async () => Promise.reject(new Error('boom'))) } }).createMachine({ invoke: { src: 'broken' } }),
    );
    const answer = ask(failing, null, { snapshot: () => undefined }, null);
    failing.start();
    await expect(answer).rejects.toThrow('boom');
  });
});
