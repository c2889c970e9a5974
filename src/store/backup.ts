import { accessSync, constants, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { TunnelManagerError } from '../errors.ts';
import { schemaVersion } from './migrations.ts';

/** Backup files written on the schedule: `tunnel-manager-<UTC time>.db`, so they sort by age. */
const SCHEDULED = /^tunnel-manager-\d{8}T\d{6}Z\.db$/;

export function backupFileName(at = new Date()): string {
  return `tunnel-manager-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}.db`;
}

/**
 * An online copy of the database (SQLite's backup API through better-sqlite3): consistent while the service keeps
 * writing, written beside the target and renamed into place, so a backup file is always whole.
 */
export async function backupDatabase(db: Database, target: string): Promise<{ path: string; bytes: number }> {
  mkdirSync(dirname(target), { recursive: true });
  // SQLite says only "unable to open database file"; this names the directory.
  accessSync(dirname(target), constants.W_OK);
  const partial = `${target}.partial`;
  rmSync(partial, { force: true });
  await db.backup(partial);
  renameSync(partial, target);
  return { path: target, bytes: statSync(target).size };
}

/** Deletes the oldest scheduled backups in `dir` beyond `keep`; returns the names deleted. */
export function rotateBackups(dir: string, keep: number): string[] {
  if (!existsSync(dir)) return [];
  const scheduled = readdirSync(dir).filter((name) => SCHEDULED.test(name)).sort();
  const gone = scheduled.slice(0, Math.max(0, scheduled.length - keep));
  for (const name of gone) rmSync(join(dir, name), { force: true });
  return gone;
}

/** Checks that `file` is a Tunnel Manager database: SQLite, readable, with our tables and a known schema version. */
export function inspectBackup(file: string, latestVersion: number): { version: number; routes: number } {
  // A missing or unreadable file is FILE_NOT_FOUND or PERMISSION_DENIED naming it, not "not a database".
  accessSync(file, constants.R_OK);
  let db: Database | undefined;
  try {
    db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
    const version = schemaVersion(db);
    const routes = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM routes').get()?.n ?? 0;
    if (version > latestVersion) {
      throw new TunnelManagerError({
        code: 'INPUT_INVALID',
        message: `${file} has schema version ${version}, newer than this release knows (${latestVersion}).`,
        fix: 'Restore it with the release that wrote it, or newer.',
        details: { file, version, latestVersion },
      });
    }
    return { version, routes };
  } catch (error) {
    if (error instanceof TunnelManagerError) throw error;
    throw new TunnelManagerError({
      code: 'INPUT_INVALID',
      message: `${file} is not a Tunnel Manager database: ${error instanceof Error ? error.message : String(error)}`,
      fix: 'Pass a file written by `tunnel-manager backup` or by the backup schedule (<dataDir>/backups).',
      details: { file },
    });
  } finally {
    db?.close();
  }
}

/**
 * Puts a backup in place of the database (the service must be stopped): the current database is kept beside it as
 * `<name>.before-restore-<time>`, its WAL files removed, and the backup copied in through a temporary file.
 */
export async function restoreDatabase(file: string, databasePath: string, latestVersion: number): Promise<{ routes: number; keptAs: string | null }> {
  const { routes } = inspectBackup(file, latestVersion);
  mkdirSync(dirname(databasePath), { recursive: true });
  let keptAs: string | null = null;
  if (existsSync(databasePath)) {
    const stem = join(dirname(databasePath), `${basename(databasePath)}.before-restore-${backupFileName().replace(/^tunnel-manager-|\.db$/g, '')}`);
    keptAs = stem;
    // Two restores in one second must not overwrite the first one's copy.
    for (let n = 2; existsSync(keptAs); n += 1) keptAs = `${stem}-${n}`;
    // Fold the WAL into the file when it is still a database (a damaged one is kept as it is, WAL files beside it).
    try {
      const current = new BetterSqlite3(databasePath);
      try {
        current.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        current.close();
      }
    } catch {
      // not a readable database any more: keep it byte for byte
    }
    renameSync(databasePath, keptAs);
    for (const suffix of ['-wal', '-shm']) if (existsSync(`${databasePath}${suffix}`)) renameSync(`${databasePath}${suffix}`, `${keptAs}${suffix}`);
  }
  const source = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  try {
    const incoming = `${databasePath}.restoring`;
    rmSync(incoming, { force: true });
    await source.backup(incoming);
    renameSync(incoming, databasePath);
  } finally {
    source.close();
  }
  return { routes, keptAs };
}
