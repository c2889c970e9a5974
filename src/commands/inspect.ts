import { formatInspection, readInspection } from '../app/operations/inspection.ts';
import { withDatabase } from './database-option.ts';
import { EXIT, print, UsageError, type Command } from './options.ts';

/** `tunnel-manager inspect [--json] [--limit N]`: every actor's state and context, and recent transitions. */
export const inspect: Command = (_positionals, options) =>
  withDatabase(options, (db) => {
    const limit = options.limit === undefined ? 30 : Number(options.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1');
    const report = readInspection(db, limit);
    print(options.json ? JSON.stringify(report, null, 2) : formatInspection(report));
    return EXIT.ok;
  });
