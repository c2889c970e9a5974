import { formatStatus, readStatus } from '../app/use-cases/tunnel-status.ts';
import { withDatabase } from './database-option.ts';
import { EXIT, print, type Command } from './options.ts';

/** `tunnel-manager status [--json]`: the tunnel's state as the tunnel manager last persisted it. */
export const status: Command = (_positionals, options) =>
  withDatabase(options, (db, config) => {
    const report = readStatus(db, config);
    print(options.json ? JSON.stringify(report, null, 2) : formatStatus(report));
    return EXIT.ok;
  });
