import type { Actor, AnyActorRef } from 'xstate';
import type { SupervisorMachine } from '../../machines/supervisor.machine.ts';

/** A long-lived child of the supervisor (tunnel, topology, zones, ingress, orphans), or a clear failure when it is absent. */
export function supervisorChild(supervisor: Actor<SupervisorMachine> | undefined, id: string): AnyActorRef {
  const children = supervisor?.getSnapshot().children as Record<string, AnyActorRef | undefined> | undefined;
  const ref = children?.[id];
  if (!ref) throw new Error(`the supervisor has no ${id} child`);
  return ref;
}
