import { enqueueActions, setup } from 'xstate';
import { tunnelMachine, type TunnelSettings } from './tunnel.machine.ts';

/**
 * The root actor. It owns the long-lived children (invoked by name, so their snapshots persist with it)
 * and, later, one route actor per CNAME request (spawned by name).
 * The service in src/app/durable-supervisor.ts persists this actor's snapshot with its children to SQLite
 * and restores it on boot; after a restore it sends RECHECK_ALL so every child re-checks the world.
 *
 * Adding a long-lived child = one line in `actors` and one line in `invoke`.
 */

export interface SupervisorSettings {
  tunnel: TunnelSettings;
}

export interface SupervisorContext {
  settings: SupervisorSettings;
  /** Times the persisted snapshot was restored (boots after the first). */
  restores: number;
}

export type SupervisorEvent =
  /** After a restore (or on demand): every child re-checks reality with the current settings. */
  | { type: 'RECHECK_ALL'; settings: SupervisorSettings };

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorSettings,
  },
  actors: {
    tunnel: tunnelMachine,
  },
  actions: {
    recheckChildren: enqueueActions(({ event, self, enqueue }) => {
      if (event.type !== 'RECHECK_ALL') return;
      enqueue.assign(({ context }) => ({ settings: event.settings, restores: context.restores + 1 }));
      const settingsOf: Record<string, unknown> = { tunnel: event.settings.tunnel };
      for (const childId of Object.keys(self.getSnapshot().children)) {
        enqueue.sendTo(childId, { type: 'RECHECK', settings: settingsOf[childId] });
      }
    }),
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({ settings: input, restores: 0 }),
  invoke: [
    { id: 'tunnel', systemId: 'tunnel', src: 'tunnel', input: ({ context }) => context.settings.tunnel },
  ],
  initial: 'supervising',
  states: {
    supervising: {
      on: { RECHECK_ALL: { actions: 'recheckChildren' } },
    },
  },
});

export type SupervisorMachine = typeof supervisorMachine;
