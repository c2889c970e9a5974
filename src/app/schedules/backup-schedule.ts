import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Database } from 'better-sqlite3';
import { backupDatabase, backupFileName, rotateBackups } from '../../store/backup.ts';
import { startRounds } from './rounds.ts';

/** Where backups go: `backup.dir`, or `<dataDir>/backups`. */
export function backupDir(config: { dataDir: string; backup: { dir?: string | undefined } }): string {
  return config.backup.dir ?? join(config.dataDir, 'backups');
}

/**
 * Online backups of the database every `intervalMs`, the oldest beyond `keep` deleted. A failed backup is logged and
 * tried again at the next interval. Returns the function that stops the schedule.
 */
export function startBackupSchedule(options: { db: Database; dir: string; intervalMs: number; keep: number; logger: Logger }): () => void {
  if (options.intervalMs <= 0) return () => undefined;
  const backup = async (): Promise<void> => {
    try {
      const written = await backupDatabase(options.db, join(options.dir, backupFileName()));
      const removed = rotateBackups(options.dir, options.keep);
      options.logger.info({ ...written, removed }, 'database backed up');
    } catch (error) {
      options.logger.error({ err: error, dir: options.dir }, 'database backup failed; trying again at the next interval');
    }
  };
  return startRounds(backup, { intervalMs: options.intervalMs, skipWhenBusy: true, logger: options.logger, what: 'backing up the database' }).stop;
}
