import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import type { TunnelContext } from '../../../machines/tunnel.machine.ts';
import type { TunnelSnapshot } from '../../../src/app/use-cases/context.ts';
import { notServingSoon, SOON_MS, waitForTunnelRunning } from '../../../src/app/use-cases/tunnel-availability.ts';

/** When a CNAME request can expect the tunnel to serve soon, and when it is told at once (issue 27, item 1). */

const NOW = Date.parse('2026-11-22T10:00:00Z');
const snapshot = (value: unknown, context: Partial<TunnelContext> = {}): TunnelSnapshot => ({
  value,
  context: { backoffUntil: null, lastError: null, consecutiveFailures: 0, ...context } as TunnelContext,
});
const outcome = { outcome: 'Nothing was created.' };

describe('notServingSoon', () => {
  it('running, or on its way (booting, starting, restarting, reloading): soon', () => {
    for (const value of [{ running: 'up' }, { running: 'degraded' }, 'booting', 'starting', 'restarting', 'reloading']) {
      expect(notServingSoon(snapshot(value), NOW, outcome), JSON.stringify(value)).toBeNull();
    }
  });

  it('a backoff with little left is soon; with more left, refused with the next start and tunnel_restart', () => {
    expect(notServingSoon(snapshot('backoff', { backoffUntil: NOW + SOON_MS }), NOW, outcome)).toBeNull();
    const refused = notServingSoon(snapshot('backoff', { backoffUntil: NOW + 240_000, lastError: 'exit 1', consecutiveFailures: 7 }), NOW, outcome)!;
    expect(refused.toJSON()).toMatchObject({
      code: 'TUNNEL_NOT_RUNNING',
      details: { state: 'backoff', nextStartAt: '2026-11-22T10:04:00.000Z', retryAfterSeconds: 240, consecutiveFailures: 7, lastError: 'exit 1' },
    });
    expect(refused.message).toContain('Nothing was created.');
    expect(refused.fix).toContain('Retry after 2026-11-22T10:04:00.000Z (in 240 s)');
    expect(refused.fix).toContain('tunnel_restart');
  });

  it('a start that just failed is not soon, however short its backoff', () => {
    expect(notServingSoon(snapshot('backoff', { backoffUntil: NOW + 5_000 }), NOW, { ...outcome, justFailed: true })?.code).toBe('TUNNEL_NOT_RUNNING');
  });

  it('stopped or stopping: refused, with tunnel_restart', () => {
    for (const value of ['stopped', 'stopping']) {
      const refused = notServingSoon(snapshot(value), NOW, outcome)!;
      expect(refused.toJSON()).toMatchObject({ code: 'TUNNEL_NOT_RUNNING', details: { state: value, nextStartAt: null } });
      expect(refused.fix).toContain('tunnel_restart');
    }
  });
});

describe('waitForTunnelRunning', () => {
  /** An actor with the states and context the wait reads (the tunnel machine's own effects need a cloudflared). */
  const tunnel = (initial: string, backoffUntil: number | null) =>
    createActor(
      createMachine({
        initial,
        context: { backoffUntil, lastError: null, consecutiveFailures: 1 },
        states: {
          starting: { on: { FAIL: 'backoff', UP: 'running' } },
          backoff: { on: { START: 'starting' } },
          running: { initial: 'up', states: { up: {} } },
        },
      }),
    ).start();

  it('gives up at once when a start fails while it waits, without waiting out its timeout', async () => {
    const actor = tunnel('starting', Date.now() + 5_000);
    const waiting = waitForTunnelRunning(actor, 3_600_000);
    actor.send({ type: 'FAIL' });
    await expect(waiting).rejects.toMatchObject({ code: 'TUNNEL_NOT_RUNNING', details: { state: 'backoff' } });
  });

  it('waits through a short backoff under way when it begins, and resolves once running', async () => {
    const actor = tunnel('backoff', Date.now() + 2_000);
    const waiting = waitForTunnelRunning(actor, 3_600_000);
    actor.send({ type: 'START' });
    actor.send({ type: 'UP' });
    await expect(waiting).resolves.toBeUndefined();
  });
});
