import type { Database } from 'better-sqlite3';
import { jsonValue } from './json-column.ts';

export interface StoredSnapshot {
  actorId: string;
  machineVersion: string;
  snapshot: unknown;
  updatedAt: number;
}

interface SnapshotRow {
  actor_id: string;
  machine_version: string;
  snapshot: string;
  updated_at: number;
}

interface TransitionColumns {
  id: number;
  ts: number;
  actor_id: string;
  event_type: string;
  from_state: string | null;
  to_state: string;
}

export interface TransitionRow {
  id: number;
  ts: number;
  actorId: string;
  eventType: string;
  fromState: string | null;
  toState: string;
}

/** Persisted actor snapshots and the bounded transition history (the root actor's memory). */
export class ActorRepository {
  private readonly upsertSnapshot;
  private readonly selectSnapshot;
  private readonly deleteSnapshot;
  private readonly insertTransition;
  private readonly trimTransitions;
  private readonly selectRecent;
  private readonly selectRecentForActor;

  constructor(private readonly db: Database) {
    this.upsertSnapshot = db.prepare(
      `INSERT INTO actor_snapshots (actor_id, machine_version, snapshot, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (actor_id) DO UPDATE SET machine_version = excluded.machine_version,
         snapshot = excluded.snapshot, updated_at = excluded.updated_at`,
    );
    this.selectSnapshot = db.prepare<[string], SnapshotRow>(
      'SELECT actor_id, machine_version, snapshot, updated_at FROM actor_snapshots WHERE actor_id = ?',
    );
    this.deleteSnapshot = db.prepare('DELETE FROM actor_snapshots WHERE actor_id = ?');
    this.insertTransition = db.prepare(
      'INSERT INTO actor_transitions (ts, actor_id, event_type, from_state, to_state) VALUES (?, ?, ?, ?, ?)',
    );
    this.trimTransitions = db.prepare(
      'DELETE FROM actor_transitions WHERE id <= (SELECT MAX(id) FROM actor_transitions) - ?',
    );
    this.selectRecent = db.prepare<[number], TransitionColumns>(
      'SELECT id, ts, actor_id, event_type, from_state, to_state FROM actor_transitions ORDER BY id DESC LIMIT ?',
    );
    this.selectRecentForActor = db.prepare<[string, number], TransitionColumns>(
      'SELECT id, ts, actor_id, event_type, from_state, to_state FROM actor_transitions WHERE actor_id = ? ORDER BY id DESC LIMIT ?',
    );
  }

  saveSnapshot(actorId: string, machineVersion: string, snapshot: unknown, at: number): void {
    this.upsertSnapshot.run(actorId, machineVersion, JSON.stringify(snapshot), at);
  }

  loadSnapshot(actorId: string): StoredSnapshot | undefined {
    const row = this.selectSnapshot.get(actorId);
    if (!row) return undefined;
    return {
      actorId: row.actor_id,
      machineVersion: row.machine_version,
      snapshot: jsonValue(row.snapshot),
      updatedAt: row.updated_at,
    };
  }

  forgetSnapshot(actorId: string): void {
    this.deleteSnapshot.run(actorId);
  }

  /** Appends transitions and keeps only the newest `keep` rows, in one transaction. */
  recordTransitions(rows: Omit<TransitionRow, 'id'>[], keep: number): void {
    if (rows.length === 0) return;
    this.db.transaction(() => {
      for (const row of rows) {
        this.insertTransition.run(row.ts, row.actorId, row.eventType, row.fromState, row.toState);
      }
      this.trimTransitions.run(keep);
    })();
  }

  recentTransitions(limit: number, actorId?: string): TransitionRow[] {
    const rows = actorId === undefined ? this.selectRecent.all(limit) : this.selectRecentForActor.all(actorId, limit);
    return rows.map((row) => ({
      id: row.id,
      ts: row.ts,
      actorId: row.actor_id,
      eventType: row.event_type,
      fromState: row.from_state,
      toState: row.to_state,
    }));
  }
}
