import type { Database } from 'better-sqlite3';
import { redact, redactString } from '../redact.ts';
import { jsonObject } from './json-column.ts';

export type AuditOutcome = 'ok' | 'denied' | 'error';

export interface AuditEntry {
  ts: number;
  /** Who: a project name, `system` for the manager's own actions, `cli` for the operator. */
  principal: string;
  action: string;
  target?: string | null;
  /** Arguments; secrets are removed again on the way in, whatever the caller did. */
  arguments?: Record<string, unknown>;
  outcome: AuditOutcome;
  errorCode?: string | null;
  durationMs?: number | null;
  details?: Record<string, unknown>;
}

interface AuditColumns {
  id: number;
  ts: number;
  principal: string;
  action: string;
  target: string | null;
  arguments: string;
  outcome: AuditOutcome;
  error_code: string | null;
  duration_ms: number | null;
  details: string;
}

export interface AuditRow extends Required<AuditEntry> {
  id: number;
}

/**
 * The audit log: one row per tool call or change, allowed or denied. The one writer of `audit_log`: whatever a
 * caller passes, the target, arguments and details are redacted here, so a token a caller sent never lands in a row.
 */
export class AuditRepository {
  private readonly insert;
  private readonly selectRecent;
  private readonly selectRecentForPrincipal;
  private readonly deleteBefore;

  constructor(db: Database) {
    this.insert = db.prepare(
      `INSERT INTO audit_log (ts, principal, action, target, arguments, outcome, error_code, duration_ms, details)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const columns = 'id, ts, principal, action, target, arguments, outcome, error_code, duration_ms, details';
    this.selectRecent = db.prepare<[number, number], AuditColumns>(`SELECT ${columns} FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?`);
    this.selectRecentForPrincipal = db.prepare<[string, number, number], AuditColumns>(
      `SELECT ${columns} FROM audit_log WHERE principal = ? AND id < ? ORDER BY id DESC LIMIT ?`,
    );
    this.deleteBefore = db.prepare('DELETE FROM audit_log WHERE ts < ?');
  }

  /** Deletes the rows written before `ts`; returns how many. */
  pruneBefore(ts: number): number {
    return this.deleteBefore.run(ts).changes;
  }

  record(entry: AuditEntry): number {
    const info = this.insert.run(
      entry.ts,
      entry.principal,
      entry.action,
      entry.target === undefined || entry.target === null ? null : redactString(entry.target),
      JSON.stringify(redact(entry.arguments ?? {})),
      entry.outcome,
      entry.errorCode ?? null,
      entry.durationMs ?? null,
      JSON.stringify(redact(entry.details ?? {})),
    );
    return Number(info.lastInsertRowid);
  }

  /** Newest first, before the row id `before` (for paging). */
  recent(limit: number, options: { principal?: string; before?: number } = {}): AuditRow[] {
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    const rows =
      options.principal === undefined
        ? this.selectRecent.all(before, limit)
        : this.selectRecentForPrincipal.all(options.principal, before, limit);
    return rows.map((row) => ({
      id: row.id,
      ts: row.ts,
      principal: row.principal,
      action: row.action,
      target: row.target,
      arguments: jsonObject(row.arguments),
      outcome: row.outcome,
      errorCode: row.error_code,
      durationMs: row.duration_ms,
      details: jsonObject(row.details),
    }));
  }
}
