import { createHash } from 'node:crypto';
import { MACHINES } from '../../../machines/index.ts';

/**
 * A persisted snapshot is only restored by the code that wrote it: the version tag is a hash of every
 * machine's definition, so any change to states, transitions or actions makes old snapshots start fresh
 * (each child then re-derives its state from the world), instead of restoring into a shape that no longer exists.
 */
export function machinesVersion(): string {
  const hash = createHash('sha256');
  for (const [name, machine] of Object.entries(MACHINES).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    hash.update(name);
    hash.update(JSON.stringify(machine.toJSON()));
  }
  return hash.digest('hex').slice(0, 16);
}
