import { enqueueActions, setup, stopChild } from 'xstate';
import { ingressMachine } from './ingress.machine.ts';
import { orphansMachine, type OrphansInput } from './orphans.machine.ts';
import { routeMachine, type RouteRequest } from './route.machine.ts';
import { topologyMachine, type TopologyMachineInput } from './topology.machine.ts';
import { tunnelMachine, type TunnelSettings } from './tunnel.machine.ts';
import { zonesMachine, type ZonesInput } from './zones.machine.ts';

/**
 * The root actor. It invokes the long-lived children by name (so their snapshots persist with it) and spawns one
 * route saga per CNAME request or removal. The service in src/app/actors/durable-supervisor.ts persists this actor with
 * all its children to SQLite and restores it on boot; after a restore it sends RECHECK_ALL so every child
 * re-checks the world.
 *
 * Adding a long-lived child = one line in `SupervisorChildren`, one in `actors` and one in `invoke`.
 */

/**
 * The long-lived children: child id → the name of its logic in `actors`. XState types `snapshot.children.<id>`
 * from it, so src reaches a child as its own actor ref (src/app/actors/supervisor-children.ts), never by cast.
 * Route sagas (`route-<requestId>`) are spawned under ids not listed here: they are typed as route actors.
 */
export type SupervisorChildren = {
  tunnel: 'tunnel';
  topology: 'topology';
  zones: 'zones';
  ingress: 'ingress';
  orphans: 'orphans';
};

/** The id of a long-lived child of the supervisor. */
export type SupervisorChildId = keyof SupervisorChildren;

export interface SupervisorSettings {
  tunnel: TunnelSettings;
  topology: TopologyMachineInput;
  zones: ZonesInput;
  orphans: OrphansInput;
}

export interface SupervisorContext {
  settings: SupervisorSettings;
  /** Times the persisted snapshot was restored (boots after the first). */
  restores: number;
}

export type SupervisorEvent =
  /** After a restore (or on demand): every child re-checks reality with the current settings. */
  | { type: 'RECHECK_ALL'; settings: SupervisorSettings }
  /** Start a route saga (its id is `route-<requestId>`). */
  | { type: 'ROUTE.START'; request: RouteRequest }
  /** A finished saga's outcome was delivered: drop the actor. */
  | { type: 'ROUTE.FINISHED'; requestId: string };

export const ROUTE_ACTOR_PREFIX = 'route-';

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorSettings,
    children: {} as SupervisorChildren,
  },
  actors: {
    tunnel: tunnelMachine,
    topology: topologyMachine,
    zones: zonesMachine,
    ingress: ingressMachine,
    orphans: orphansMachine,
    route: routeMachine,
  },
  actions: {
    recheckChildren: enqueueActions(({ event, self, enqueue }) => {
      if (event.type !== 'RECHECK_ALL') return;
      enqueue.assign(({ context }) => ({ settings: event.settings, restores: context.restores + 1 }));
      for (const childId of Object.keys(self.getSnapshot().children)) {
        const settings = childId === 'tunnel' ? event.settings.tunnel : childId === 'orphans' ? event.settings.orphans : undefined;
        enqueue.sendTo(childId, settings === undefined ? { type: 'RECHECK' } : { type: 'RECHECK', settings });
      }
    }),
    startRoute: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'ROUTE.START') return;
      enqueue.spawnChild('route', { id: `${ROUTE_ACTOR_PREFIX}${event.request.requestId}`, input: event.request });
    }),
    dropRoute: stopChild((_, params: { requestId: string }) => `${ROUTE_ACTOR_PREFIX}${params.requestId}`),
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({ settings: input, restores: 0 }),
  invoke: [
    { id: 'tunnel', systemId: 'tunnel', src: 'tunnel', input: ({ context }) => context.settings.tunnel },
    { id: 'topology', systemId: 'topology', src: 'topology', input: ({ context }) => context.settings.topology },
    { id: 'zones', systemId: 'zones', src: 'zones', input: ({ context }) => context.settings.zones },
    { id: 'ingress', systemId: 'ingress', src: 'ingress' },
    { id: 'orphans', systemId: 'orphans', src: 'orphans', input: ({ context }) => context.settings.orphans },
  ],
  initial: 'supervising',
  states: {
    supervising: {
      description: 'Runs the long-lived children. ROUTE.START spawns a route saga and ROUTE.FINISHED drops it. RECHECK_ALL (sent after a restore) makes every child re-check the world with the current settings.',
      on: {
        RECHECK_ALL: { actions: 'recheckChildren' },
        'ROUTE.START': { actions: 'startRoute' },
        'ROUTE.FINISHED': { actions: { type: 'dropRoute', params: ({ event }) => ({ requestId: event.requestId }) } },
      },
    },
  },
});

export type SupervisorMachine = typeof supervisorMachine;
