import type { Config } from '../app/config/config.ts';
import { openDatabase, type Database } from '../store/database.ts';
import { configFrom, requireDatabase } from './config-option.ts';
import type { Options } from './options.ts';

/** Opens the database a tunnel manager left behind (refusing to create one), hands it to `use`, and closes it. */
export async function withDatabase<T>(options: Options, use: (db: Database, config: Config) => T | Promise<T>): Promise<T> {
  const config = configFrom(options);
  requireDatabase(config);
  const { db } = openDatabase(config.databasePath);
  try {
    return await use(db, config);
  } finally {
    db.close();
  }
}
