import type { ActorRef, EventObject, Snapshot } from 'xstate';
import type { TunnelManagerError } from './errors.ts';

/**
 * The one way to send an actor a request and wait for its answer (a reload, a scan, an ingress change, the tunnel
 * coming up, a saga's end). A shared leaf, so adapters (the ingress runtime) and src/app use the same one.
 */

/** What a reading makes of what an actor emitted or became: not the answer (undefined: keep waiting), the answer, or a failure. */
export type Outcome<T> = undefined | { value: T } | { error: unknown };

/** Where the answer comes from: an event the actor emits, or a snapshot it takes (the current one counts). */
export interface Until<TSnapshot, TEmitted, T> {
  emitted?: (event: TEmitted) => Outcome<T>;
  snapshot?: (snapshot: TSnapshot) => Outcome<T>;
}

/** How long the answer may take, and the failure (our error shape) when it takes longer. */
export interface AskTimeout {
  ms: number;
  error: () => TunnelManagerError;
}

/**
 * Sends `event` to `actor` (none: only waits) and settles with the first outcome `until` reads from what the actor
 * emits or becomes after it: its value, its failure, the actor's own failure, or `timeout`'s error (null: the actor
 * answers by itself, e.g. through its own timeouts). Every listener and the timer are gone once it has settled.
 */
export function ask<TSnapshot extends Snapshot<unknown>, TEvent extends EventObject, TEmitted extends EventObject, T>(
  actor: ActorRef<TSnapshot, TEvent, TEmitted>,
  event: TEvent | null,
  until: Until<TSnapshot, TEmitted, T>,
  timeout: AskTimeout | null,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stops: (() => void)[] = [];
    let settled = false;
    const settle = (outcome: Outcome<T>): void => {
      if (outcome === undefined || settled) return;
      settled = true;
      for (const stop of stops) stop();
      if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    };
    // Everything is listening before the event goes: an actor may answer while `send` runs.
    if (timeout !== null) {
      const timer = setTimeout(() => settle({ error: timeout.error() }), timeout.ms);
      stops.push(() => clearTimeout(timer));
    }
    const { emitted, snapshot } = until;
    if (emitted !== undefined) {
      const listening = actor.on('*', (emittedEvent) => settle(emitted(emittedEvent)));
      stops.push(() => listening.unsubscribe());
    }
    const subscription = actor.subscribe({
      next: (next) => {
        if (snapshot !== undefined) settle(snapshot(next));
      },
      error: (error: unknown) => settle({ error }),
    });
    stops.push(() => subscription.unsubscribe());
    if (settled) subscription.unsubscribe();
    if (event !== null) actor.send(event);
    if (snapshot !== undefined) settle(snapshot(actor.getSnapshot()));
  });
}
