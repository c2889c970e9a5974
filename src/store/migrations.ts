import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { TunnelManagerError } from '../errors.ts';
import { PACKAGE_ROOT } from '../package-root.ts';

/** The folder that holds `NNN_name.sql`, next to `src/` at the project root. */
export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE_PATTERN = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** Reads the migration files in order and checks they are numbered 1, 2, 3… with no gap. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, match: FILE_PATTERN.exec(file) }))
    .filter((entry): entry is { file: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ file, match }) => ({
      version: Number(match[1]),
      name: match[2] ?? '',
      sql: readFileSync(join(dir, file), 'utf8'),
    }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new TunnelManagerError({
        code: 'MIGRATION_FAILED',
        message: `Migration files in ${dir} are not numbered 001, 002, … without gaps: expected ${String(index + 1).padStart(3, '0')}, found ${String(migration.version).padStart(3, '0')}_${migration.name}.sql.`,
        fix: 'Renumber the migration files so that they run in order with no gap and no duplicate.',
        details: { dir, expected: index + 1, found: migration.version },
      });
    }
  });
  return migrations;
}

export interface MigrationReport {
  from: number;
  to: number;
  applied: string[];
}

/** `PRAGMA user_version`: the schema version the database is at (0 for a new file). */
export function schemaVersion(db: Database): number {
  const version: unknown = db.pragma('user_version', { simple: true });
  if (typeof version !== 'number') throw new Error(`PRAGMA user_version answered ${String(version)}, not a number.`);
  return version;
}

/**
 * Applies every migration newer than `PRAGMA user_version`, each in its own transaction together with
 * the version bump, so a failure leaves the database at the last good version.
 * Refuses a database written by a newer tunnel-manager.
 */
export function migrate(db: Database, migrations: Migration[] = loadMigrations()): MigrationReport {
  const from = schemaVersion(db);
  const latest = migrations.at(-1)?.version ?? 0;
  if (from > latest) {
    throw new TunnelManagerError({
      code: 'DATABASE_TOO_NEW',
      message: `The database ${db.name} is at schema version ${from}, but this tunnel-manager only knows versions up to ${latest}.`,
      fix: 'Run the tunnel-manager release that wrote this database (or newer), or restore a backup taken before the upgrade. Do not edit PRAGMA user_version by hand.',
      details: { database: db.name, databaseVersion: from, codeVersion: latest },
    });
  }
  const applied: string[] = [];
  for (const migration of migrations) {
    if (migration.version <= from) continue;
    const apply = db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    });
    try {
      apply();
    } catch (error) {
      throw new TunnelManagerError({
        code: 'MIGRATION_FAILED',
        message: `Migration ${String(migration.version).padStart(3, '0')}_${migration.name}.sql failed: ${error instanceof Error ? error.message : String(error)}`,
        fix: 'The database was left at the previous version. Restore from backup or fix the migration, then run `tunnel-manager migrate` again.',
        details: { database: db.name, version: migration.version },
        cause: error,
      });
    }
    applied.push(`${String(migration.version).padStart(3, '0')}_${migration.name}`);
  }
  return { from, to: Math.max(from, latest), applied };
}
