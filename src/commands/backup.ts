import { join, resolve } from 'node:path';
import { backupDir } from '../app/schedules/backup-schedule.ts';
import { backupDatabase, backupFileName } from '../store/backup.ts';
import { withDatabase } from './database-option.ts';
import { EXIT, print, type Command } from './options.ts';

/** `tunnel-manager backup [--out FILE]`: an online copy of the database, the tunnel manager running or not. */
export const backup: Command = (_positionals, options) =>
  withDatabase(options, async (db, config) => {
    const target = options.out === undefined ? join(backupDir(config), backupFileName()) : resolve(options.out);
    const started = performance.now();
    const written = await backupDatabase(db, target);
    print(`wrote ${written.path} (${written.bytes} bytes, ${Math.round(performance.now() - started)} ms)`);
    return EXIT.ok;
  });
