import type { InspectionEvent } from 'xstate';
import type { ActorRepository, TransitionRow } from '../../store/actor-repository.ts';

/** Turns a state value into a readable path: `running.up`, `backoff`. */
export function stateToString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    return Object.entries(value)
      .map(([key, child]) => {
        const inner = stateToString(child);
        return inner ? `${key}.${inner}` : key;
      })
      .join(',');
  }
  return String(value);
}

/**
 * Fed by the root actor's `inspect` stream: notices every change of state value of any actor in the system
 * and buffers it; `flush()` writes the buffer to SQLite, keeping only the newest `keep` rows.
 */
export class TransitionRecorder {
  private readonly lastState = new Map<string, string>();
  private buffer: Omit<TransitionRow, 'id'>[] = [];

  constructor(
    private readonly repository: ActorRepository,
    private readonly keep = 2000,
    private readonly onRecorded: () => void = () => undefined,
  ) {}

  readonly inspect = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot') return;
    const { snapshot } = event;
    // Only machines have a state value (promise and callback actors have none).
    if (!('value' in snapshot) || snapshot.value === undefined) return;
    const { actorRef } = event;
    const actorId = 'id' in actorRef && typeof actorRef.id === 'string' ? actorRef.id : actorRef.sessionId;
    const to = stateToString(snapshot.value);
    const from = this.lastState.get(actorId) ?? null;
    if (from === to) return;
    this.lastState.set(actorId, to);
    this.buffer.push({ ts: Date.now(), actorId, eventType: event.event.type, fromState: from, toState: to });
    this.onRecorded();
  };

  /** Forget an actor that was stopped, so a later actor with the same id starts from no state. */
  forget(actorId: string): void {
    this.lastState.delete(actorId);
  }

  flush(): void {
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    this.repository.recordTransitions(rows, this.keep);
  }
}
