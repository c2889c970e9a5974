import type { Database } from 'better-sqlite3';
import { jsonObject } from './json-column.ts';

export interface EventRow {
  id: number;
  ts: number;
  kind: string;
  /** The project the event concerns, or `*` for everyone. */
  project: string;
  data: Record<string, unknown>;
}

interface EventColumns {
  id: number;
  ts: number;
  kind: string;
  project: string;
  data: string;
}

/** The `events` table: appended once, read from a cursor (the id). */
export class EventsRepository {
  private readonly insert;
  private readonly selectSince;
  private readonly selectSinceForProject;
  private readonly deleteBefore;

  constructor(db: Database) {
    this.insert = db.prepare('INSERT INTO events (ts, kind, project, data) VALUES (?, ?, ?, ?)');
    this.selectSince = db.prepare<[number, number], EventColumns>('SELECT id, ts, kind, project, data FROM events WHERE id > ? ORDER BY id LIMIT ?');
    this.selectSinceForProject = db.prepare<[number, string, number], EventColumns>(
      "SELECT id, ts, kind, project, data FROM events WHERE id > ? AND project IN (?, '*') ORDER BY id LIMIT ?",
    );
    this.deleteBefore = db.prepare('DELETE FROM events WHERE ts < ?');
  }

  /** Deletes the events from before `ts`; cursors stay valid (ids only grow). Returns how many. */
  pruneBefore(ts: number): number {
    return this.deleteBefore.run(ts).changes;
  }

  append(event: Omit<EventRow, 'id'>): EventRow {
    const info = this.insert.run(event.ts, event.kind, event.project, JSON.stringify(event.data));
    return { ...event, id: Number(info.lastInsertRowid) };
  }

  /** Events after `cursor`, oldest first; with `project`, only that project's and the broadcast ones. */
  since(cursor: number, limit: number, project?: string): EventRow[] {
    const rows =
      project === undefined ? this.selectSince.all(cursor, limit) : this.selectSinceForProject.all(cursor, project, limit);
    return rows.map((row) => ({ ...row, data: jsonObject(row.data) }));
  }
}
