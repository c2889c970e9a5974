import { EventEmitter } from 'node:events';
import type { EventRow, EventsRepository } from '../../store/events-repository.ts';

/**
 * Every state change worth telling someone: appended once to `events` (its id is the cursor a client
 * resumes from), then broadcast in-process to whoever listens (the MCP layer's sessions).
 */
export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor(private readonly repository: EventsRepository) {
    this.emitter.setMaxListeners(0);
  }

  publish(kind: string, project: string, data: Record<string, unknown>, at = Date.now()): EventRow {
    const row = this.repository.append({ ts: at, kind, project, data });
    this.emitter.emit('event', row);
    return row;
  }

  subscribe(listener: (event: EventRow) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
