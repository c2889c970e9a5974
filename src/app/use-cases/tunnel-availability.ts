import type { AnyActorRef } from 'xstate';
import { TunnelManagerError } from '../../errors.ts';
import type { TunnelSnapshot } from './context.ts';
import { stateToString } from '../actors/transition-recorder.ts';

/**
 * Whether the tunnel will serve a new route soon, from the tunnel actor's snapshot: what a CNAME request checks before
 * anything is created, and what the saga's wait for the tunnel gives up on at once rather than waiting out its timeout.
 *
 * Soon: running, or on its way (booting, starting, restarting, reloading), or backing off with at most SOON_MS left.
 * Not soon: backing off longer (the persisted `backoffUntil` says until when), stopping, stopped.
 */

/** A backoff with at most this much left counts as "starting": the first step of the schedule (5 s) is one. */
export const SOON_MS = 10_000;

function stateOf(snapshot: TunnelSnapshot): string {
  return stateToString(snapshot.value);
}

export function isTunnelRunning(snapshot: TunnelSnapshot): boolean {
  return stateOf(snapshot).startsWith('running');
}

/**
 * TUNNEL_NOT_RUNNING when the tunnel will not serve soon, else null. `justFailed`: a start failed while someone
 * waited (the tunnel went into backoff), which is not soon whatever the wait.
 */
export function notServingSoon(snapshot: TunnelSnapshot, now: number, options: { justFailed?: boolean; outcome: string }): TunnelManagerError | null {
  const state = stateOf(snapshot);
  const { context } = snapshot;
  const lastError = context.lastError ? ` (last error: ${context.lastError})` : '';
  if (state === 'backoff') {
    const until = context.backoffUntil ?? now;
    const left = Math.max(0, until - now);
    if (left <= SOON_MS && options.justFailed !== true) return null;
    const seconds = Math.ceil(left / 1000);
    const at = new Date(until).toISOString();
    return new TunnelManagerError({
      code: 'TUNNEL_NOT_RUNNING',
      message:
        `cloudflared is not running: it failed to start${lastError} and backs off until ${at} (${seconds} s from now), ` +
        `so a route would not serve before then. ${options.outcome}`,
      fix:
        `Retry after ${at} (in ${seconds} s), when the tunnel starts again (tunnel_get_status shows its state and nextStartAt); ` +
        'the meta-supervisor can start it at once with tunnel_restart.',
      details: { state, nextStartAt: at, retryAfterSeconds: seconds, consecutiveFailures: context.consecutiveFailures, lastError: context.lastError },
    });
  }
  if (state === 'stopped' || state === 'stopping') {
    return new TunnelManagerError({
      code: 'TUNNEL_NOT_RUNNING',
      message: `cloudflared is ${state === 'stopped' ? 'stopped' : 'being stopped'} and does not start again by itself, so a route would not serve. ${options.outcome}`,
      fix: 'The meta-supervisor can start it with tunnel_restart; retry once tunnel_get_status says running.',
      details: { state, nextStartAt: null, lastError: context.lastError },
    });
  }
  return null;
}

/**
 * Waits until the tunnel actor is running (up or degraded). Gives up at once with TUNNEL_NOT_RUNNING when the tunnel
 * will not serve soon (notServingSoon), or goes into backoff while it waits (a start failed); else after `timeoutMs`.
 */
export function waitForTunnelRunning(tunnel: AnyActorRef, timeoutMs: number, outcome = 'Everything done for this request was undone.'): Promise<void> {
  return new Promise((resolve, reject) => {
    const snapshotNow = (): TunnelSnapshot => tunnel.getSnapshot();
    let previous = stateOf(snapshotNow());
    let settled = false;
    const finish = (error: TunnelManagerError | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      subscription?.unsubscribe();
      if (error === null) resolve();
      else reject(error);
    };
    const check = (snapshot: TunnelSnapshot) => {
      const state = stateOf(snapshot);
      const justFailed = state === 'backoff' && previous !== 'backoff';
      previous = state;
      if (isTunnelRunning(snapshot)) finish(null);
      else {
        const error = notServingSoon(snapshot, Date.now(), { justFailed, outcome });
        if (error !== null) finish(error);
      }
    };
    const timer = setTimeout(() => {
      const snapshot = snapshotNow();
      finish(
        new TunnelManagerError({
          code: 'TUNNEL_NOT_RUNNING',
          message: `cloudflared did not come up within ${Math.round(timeoutMs / 1000)} s (state ${stateOf(snapshot)}${snapshot.context.lastError ? `: ${snapshot.context.lastError}` : ''}).`,
          fix: 'Check tunnel_get_status; the tunnel restarts by itself on its backoff schedule. Retry the request once it is up.',
          details: { state: stateOf(snapshot), nextStartAt: snapshot.context.backoffUntil === null ? null : new Date(snapshot.context.backoffUntil).toISOString() },
        }),
      );
    }, timeoutMs);
    let subscription: { unsubscribe(): void } | undefined;
    // A backoff under way when the wait begins is judged by its time left; one entered while waiting is a failed start.
    check(snapshotNow());
    if (!settled) subscription = tunnel.subscribe((snapshot: TunnelSnapshot) => check(snapshot));
  });
}
