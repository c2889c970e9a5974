import { openDatabase } from '../store/database.ts';
import { configFrom } from './config-option.ts';
import { EXIT, print, type Command } from './options.ts';

/** `tunnel-manager migrate`: creates or upgrades the database, then exits. */
export const migrate: Command = (_positionals, options) => {
  const config = configFrom(options);
  const { db, migration } = openDatabase(config.databasePath);
  db.close();
  print(
    migration.applied.length > 0
      ? `migrated ${config.databasePath} from version ${migration.from} to ${migration.to}: ${migration.applied.join(', ')}`
      : `${config.databasePath} is up to date (version ${migration.to})`,
  );
  return Promise.resolve(EXIT.ok);
};
