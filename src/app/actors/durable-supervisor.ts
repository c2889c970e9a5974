import { createActor, type Actor, type InspectionEvent, type Snapshot } from 'xstate';
import type { Logger } from 'pino';
import type { SupervisorMachine, SupervisorSettings } from '../../../machines/supervisor.machine.ts';
import type { ActorRepository } from '../../store/actor-repository.ts';
import { TransitionRecorder } from './transition-recorder.ts';

export const SUPERVISOR_ACTOR_ID = 'supervisor';

/** Whether a stored value looks like a persisted actor snapshot (XState checks the rest when it restores it). */
function isPersistedSnapshot(value: unknown): value is Snapshot<unknown> {
  return typeof value === 'object' && value !== null && 'status' in value && typeof value.status === 'string';
}

export interface DurableSupervisorOptions {
  /** The supervisor machine with real implementations provided. */
  machine: SupervisorMachine;
  settings: SupervisorSettings;
  repository: ActorRepository;
  machineVersion: string;
  logger?: Logger;
  /** Snapshot writes are coalesced: at most one per this many ms. */
  debounceMs?: number;
  /** Transition history rows kept. */
  historyLimit?: number;
  /** Extra inspectors (tests, the MCP layer). */
  inspect?: (event: InspectionEvent) => void;
  /**
   * Called with the actor before it starts. Restored children resume their effects DURING start(); an effect that
   * looks up another child through the root (a saga asking the ingress actor, the ingress actor asking the tunnel)
   * must be able to find the root by then.
   */
  beforeStart?: (actor: Actor<SupervisorMachine>) => void;
}

export interface DurableSupervisor {
  actor: Actor<SupervisorMachine>;
  /** How this boot began: a fresh actor, or a restore of the persisted snapshot. */
  boot: { restored: boolean; reason: string };
  /** Writes the snapshot and the transition history now. */
  flush(): void;
  /** Flushes, then stops the actor tree (effects stop with it). */
  stop(): void;
}

/**
 * The service that makes the root actor durable: restores its persisted snapshot (with all children)
 * when the machine version matches, persists every change (debounced) and records transitions.
 * After a restore it sends RECHECK_ALL, because restored state is a claim about the world that each
 * child must verify (is cloudflared running? what does Docker say?) and pending timers were not persisted.
 */
export function startDurableSupervisor(options: DurableSupervisorOptions): DurableSupervisor {
  const { repository, machineVersion, logger } = options;
  const debounceMs = options.debounceMs ?? 200;
  let timer: NodeJS.Timeout | null = null;
  let actor: Actor<SupervisorMachine> | undefined;
  let stopped = false;

  const persist = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (!actor) return;
    recorder.flush();
    repository.saveSnapshot(SUPERVISOR_ACTOR_ID, machineVersion, actor.getPersistedSnapshot(), Date.now());
  };
  const schedule = (): void => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      try {
        persist();
      } catch (error) {
        logger?.error({ err: error }, 'could not persist the supervisor snapshot');
      }
    }, debounceMs);
  };
  const recorder = new TransitionRecorder(repository, options.historyLimit ?? 2000, schedule);

  const inspect = (event: InspectionEvent): void => {
    recorder.inspect(event);
    if (event.type === '@xstate.snapshot') schedule();
    options.inspect?.(event);
  };

  const stored = repository.loadSnapshot(SUPERVISOR_ACTOR_ID);
  let boot: DurableSupervisor['boot'] = { restored: false, reason: 'no persisted snapshot' };
  if (stored && stored.machineVersion !== machineVersion) {
    boot = { restored: false, reason: `persisted snapshot has machine version ${stored.machineVersion}, code has ${machineVersion}` };
    logger?.warn({ stored: stored.machineVersion, current: machineVersion }, 'machine definitions changed: starting fresh, children re-check the world');
  } else if (stored) {
    try {
      const { snapshot } = stored;
      if (!isPersistedSnapshot(snapshot)) throw new Error('the stored value is not an actor snapshot (it has no status)');
      actor = createActor(options.machine, {
        id: SUPERVISOR_ACTOR_ID,
        snapshot,
        input: options.settings,
        inspect,
      });
      boot = { restored: true, reason: `restored snapshot written at ${new Date(stored.updatedAt).toISOString()}` };
    } catch (error) {
      logger?.error({ err: error }, 'the persisted snapshot could not be restored: starting fresh');
      boot = { restored: false, reason: `persisted snapshot unreadable: ${error instanceof Error ? error.message : String(error)}` };
      actor = undefined;
    }
  }
  actor ??= createActor(options.machine, { id: SUPERVISOR_ACTOR_ID, input: options.settings, inspect });

  actor.subscribe({
    error: (error) => logger?.error({ err: error }, 'the supervisor actor failed'),
  });
  options.beforeStart?.(actor);
  actor.start();
  if (boot.restored) actor.send({ type: 'RECHECK_ALL', settings: options.settings });
  logger?.info({ boot }, 'supervisor started');
  persist();

  return {
    actor,
    boot,
    flush: persist,
    stop() {
      if (stopped) return;
      persist();
      stopped = true;
      actor.stop();
    },
  };
}
