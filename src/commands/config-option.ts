import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig, type Config } from '../app/config/config.ts';
import { TunnelManagerError } from '../errors.ts';
import type { Options } from './options.ts';

/** The configuration: --config (else $TUNNEL_MANAGER_CONFIG, else the embedded defaults), with --data-dir over it. */
export function configFrom(options: Options): Config {
  return loadConfig({
    ...(options.config === undefined ? {} : { path: options.config }),
    ...(options['data-dir'] === undefined ? {} : { dataDir: resolve(options['data-dir']) }),
  });
}

/**
 * Commands that read what a tunnel manager left behind must not create a database where there is none: that would
 * answer "unknown" as if all were well, and leave an empty database in a mistyped directory.
 */
export function requireDatabase(config: Config): void {
  if (existsSync(config.databasePath)) return;
  throw new TunnelManagerError({
    code: 'DATABASE_NOT_FOUND',
    message: `No tunnel-manager database at ${config.databasePath}: no service has run with the data directory ${config.dataDir}.`,
    fix: 'Point --data-dir (or $TUNNEL_MANAGER_DATA_DIR, or dataDir in --config) at the directory the service uses, or start the service there first with `tunnel-manager serve`.',
    details: { databasePath: config.databasePath, dataDir: config.dataDir },
  });
}
