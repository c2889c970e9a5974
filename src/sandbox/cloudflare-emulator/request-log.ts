import type { ActiveFault } from './faults.ts';

export interface RequestLogEntry {
  at: number;
  method: string;
  /** The route pattern, or the raw path when no route matched. */
  route: string;
  path: string;
  status: number | 'dropped';
  fault?: ActiveFault;
}

const MAX_LOG = 5000;

/** The emulator's request log: the newest MAX_LOG requests. */
export class RequestLog {
  private log: RequestLogEntry[] = [];

  record(entry: RequestLogEntry): void {
    this.log.push(entry);
    if (this.log.length > MAX_LOG) this.log = this.log.slice(-MAX_LOG);
  }

  clear(): void {
    this.log = [];
  }

  /** The live list, for an answer serialised at once. */
  entries(): readonly RequestLogEntry[] {
    return this.log;
  }

  /** A copy of every entry. */
  copies(): RequestLogEntry[] {
    return this.log.map((entry) => ({ ...entry }));
  }
}
