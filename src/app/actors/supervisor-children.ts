import type { Actor, SnapshotFrom } from 'xstate';
import { ROUTE_ACTOR_PREFIX, type SupervisorChildId, type SupervisorMachine } from '../../../machines/supervisor.machine.ts';

type Children = SnapshotFrom<SupervisorMachine>['children'];

/** The actor ref of a long-lived child of the supervisor, typed by its id (`SupervisorChildren` in the machine). */
export type SupervisorChild<K extends SupervisorChildId> = NonNullable<Children[K]>;

/** The actor ref of a route saga (spawned as `route-<requestId>`). */
export type RouteSaga = NonNullable<Children[`${typeof ROUTE_ACTOR_PREFIX}${string}`]>;

/** Reaches a long-lived child by id, typed: how the composition root hands the children to the effects. */
export type ChildOf = <K extends SupervisorChildId>(id: K) => SupervisorChild<K>;

/** A long-lived child of the supervisor (tunnel, topology, zones, ingress, orphans), or a clear failure when it is absent. */
export function supervisorChild<K extends SupervisorChildId>(supervisor: Actor<SupervisorMachine> | undefined, id: K): SupervisorChild<K> {
  const ref = supervisor?.getSnapshot().children[id];
  if (ref === undefined) throw new Error(`the supervisor has no ${id} child${supervisor === undefined ? ' (it has not started yet)' : ''}`);
  return ref;
}

/** The route saga of `requestId`, or undefined when the supervisor runs none (finished, or never started). */
export function routeSaga(supervisor: Actor<SupervisorMachine>, requestId: string): RouteSaga | undefined {
  return supervisor.getSnapshot().children[`${ROUTE_ACTOR_PREFIX}${requestId}`];
}

/** The request ids of the route sagas the supervisor runs now. */
export function routeSagaIds(supervisor: Actor<SupervisorMachine>): string[] {
  return Object.keys(supervisor.getSnapshot().children)
    .filter((id) => id.startsWith(ROUTE_ACTOR_PREFIX))
    .map((id) => id.slice(ROUTE_ACTOR_PREFIX.length));
}
