import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { migrate, type MigrationReport } from './migrations.ts';

export type { Database } from 'better-sqlite3';

export interface OpenedDatabase {
  db: Database;
  migration: MigrationReport;
}

/**
 * Opens (creating if needed) the SQLite file with WAL, foreign keys and a busy timeout,
 * then brings its schema up to date. `:memory:` is accepted for throwaway stores.
 */
export function openDatabase(path: string, options: { migrate?: boolean } = {}): OpenedDatabase {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true });
    // SQLite says only "unable to open database file"; this names the directory (and the WAL needs it writable).
    accessSync(dirname(path), constants.W_OK);
  }
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  try {
    const migration = options.migrate === false ? { from: 0, to: 0, applied: [] } : migrate(db);
    return { db, migration };
  } catch (error) {
    db.close();
    throw error;
  }
}
