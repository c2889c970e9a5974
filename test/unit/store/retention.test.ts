import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/app/config/logger.ts';
import { startRetention } from '../../../src/app/schedules/retention.ts';
import { AuditRepository } from '../../../src/store/audit-repository.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { EventsRepository } from '../../../src/store/events-repository.ts';

const DAY = 24 * 60 * 60_000;
const NOW = Date.UTC(2026, 11, 1);

let dir: string;
let db: Database;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-retention-'));
  db = openDatabase(join(dir, 'store.db')).db;
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('retention', () => {
  it('deletes audit rows and events older than their retention, keeps the rest, and cursors stay valid', () => {
    const audit = new AuditRepository(db);
    const events = new EventsRepository(db);
    for (const age of [200, 91, 89, 1]) {
      audit.record({ ts: NOW - age * DAY, principal: 'p', action: `age-${age}`, outcome: 'ok' });
      events.append({ ts: NOW - age * DAY, kind: `age-${age}`, project: '*', data: {} });
    }
    const stop = startRetention({ audit, events, auditDays: 90, eventsDays: 30, logger: createLogger({ level: 'silent' }), now: () => NOW });
    stop();
    expect(audit.recent(100).map((row) => row.action)).toEqual(['age-1', 'age-89']);
    expect(events.since(0, 100).map((row) => row.kind)).toEqual(['age-1']);
    // A client whose cursor pointed at a deleted event resumes with what is left after it.
    expect(events.since(1, 100).map((row) => row.id)).toEqual([4]);
  });
});
