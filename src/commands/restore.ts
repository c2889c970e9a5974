import { resolve } from 'node:path';
import { restoreDatabase } from '../store/backup.ts';
import { openDatabase } from '../store/database.ts';
import { loadMigrations } from '../store/migrations.ts';
import { RoutesRepository } from '../store/routes-repository.ts';
import { configFrom } from './config-option.ts';
import { EXIT, print, UsageError, type Command } from './options.ts';
import { requireManagerStopped } from './manager-process.ts';

/** `tunnel-manager restore FILE`: a backup in place of the database (tunnel manager stopped; the current one is kept). */
export const restore: Command = async ([file], options) => {
  if (file === undefined) throw new UsageError('usage: tunnel-manager restore FILE (a file written by `tunnel-manager backup`)');
  const config = configFrom(options);
  requireManagerStopped(config, 'a database cannot be replaced under it');
  const latest = Math.max(...loadMigrations().map((migration) => migration.version));
  const started = performance.now();
  const restored = await restoreDatabase(resolve(file), config.databasePath, latest);
  // A backup is input from outside: each route it brings back is served again only once the next start has
  // checked it against the records, the projects and the ports (src/app/effects/route-verification.ts).
  const { db } = openDatabase(config.databasePath);
  let unverified: number;
  try {
    unverified = new RoutesRepository(db).markAllUnverified(Date.now());
  } finally {
    db.close();
  }
  print(
    `restored ${config.databasePath} from ${resolve(file)} (${restored.routes} routes, ${Math.round(performance.now() - started)} ms)` +
      (restored.keptAs ? `; the previous database is kept as ${restored.keptAs}` : '') +
      (unverified > 0
        ? `\nthe next start serves each of the ${unverified} restored route(s) only once its DNS record, its project and its port check out; the others are reported (route.unverified) and not served`
        : ''),
  );
  return EXIT.ok;
};
