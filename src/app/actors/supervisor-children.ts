import type { Actor, AnyActorRef } from 'xstate';
import type { SupervisorMachine } from '../../../machines/supervisor.machine.ts';

/** A long-lived child of the supervisor (tunnel, topology, zones, ingress, orphans), or a clear failure when it is absent. */
export function supervisorChild(supervisor: Actor<SupervisorMachine> | undefined, id: string): AnyActorRef {
  const children = supervisor?.getSnapshot().children as Record<string, AnyActorRef | undefined> | undefined;
  const ref = children?.[id];
  if (!ref) throw new Error(`the supervisor has no ${id} child`);
  return ref;
}

/** What a listener makes of an emitted event: not ours (keep waiting), or the request's answer or failure. */
export type Outcome<T> = undefined | { value: T } | { error: unknown };

/**
 * Sends a request to an actor and settles with the first emitted event that one of `on` (event type → reading)
 * answers; every listener is removed once it has.
 */
export function askActor<T>(actor: AnyActorRef, on: Record<string, (event: never) => Outcome<T>>, send: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const subscriptions = Object.entries(on).map(([type, read]) =>
      actor.on(type, (event) => {
        const outcome = read(event as never);
        if (outcome === undefined) return;
        subscriptions.forEach((s) => s.unsubscribe());
        if ('value' in outcome) resolve(outcome.value);
        else reject(outcome.error);
      }),
    );
    send();
  });
}
