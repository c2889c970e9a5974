import { ingressMachine } from './ingress.machine.ts';
import { orphansMachine } from './orphans.machine.ts';
import { routeMachine } from './route.machine.ts';
import { supervisorMachine } from './supervisor.machine.ts';
import { topologyMachine } from './topology.machine.ts';
import { tunnelMachine } from './tunnel.machine.ts';
import { zonesMachine } from './zones.machine.ts';

/**
 * Every machine of the system, by name: the source for `tunnel-manager machines export`,
 * docs/machines.md and the version tag of persisted snapshots.
 */
export const MACHINES = {
  supervisor: supervisorMachine,
  tunnel: tunnelMachine,
  topology: topologyMachine,
  zones: zonesMachine,
  ingress: ingressMachine,
  orphans: orphansMachine,
  route: routeMachine,
} as const;

export type MachineName = keyof typeof MACHINES;
