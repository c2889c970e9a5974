import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MACHINES } from '../machines/index.ts';
import { loadConfig, type Config } from './app/config.ts';
import { createLogger } from './app/logger.ts';
import { formatInspection, readInspection } from './app/inspection.ts';
import { machineToMermaid } from './app/machine-diagram.ts';
import { renderMachinesDoc } from './app/machines-doc.ts';
import { startService } from './app/service.ts';
import { readStatus, formatStatus } from './app/status.ts';
import { formatErrorForTerminal, toErrorShape, TunnelManagerError } from './errors.ts';
import { openDatabase } from './store/database.ts';
import { generateToken, hashToken } from './mcp/token.ts';

/** Exit codes, documented in `--help` and docs/cli.md. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  config: 3,
  database: 4,
} as const;

const USAGE = `tunnel-manager: owns a Cloudflare Tunnel and lets projects publish their services through MCP.

Usage: tunnel-manager <command> [options]

Commands:
  serve                       run the service (supervisor, tunnel, MCP) until SIGTERM/SIGINT
  status [--json]             the tunnel's state as last persisted by the service
  inspect [--json] [--limit N]
                              every actor's state and context, and recent transitions
  machines export --format json|mermaid [--out DIR] [--docs FILE]
                              write each machine's definition (JSON) or state diagram (Mermaid);
                              --docs regenerates docs/machines.md
  migrate                     create or upgrade the database, then exit
  token new                   print a new MCP token and the hash to put in the configuration
  token hash                  read a token on stdin, print its hash

Options:
  --config FILE               configuration file (else $TUNNEL_MANAGER_CONFIG, else embedded defaults)
  --data-dir DIR              override dataDir from the configuration
  -h, --help                  this text
  --version                   the version

Exit codes:
  0  success
  1  the operation failed (the error says what happened and how to fix it)
  2  usage error (unknown command or option)
  3  the configuration is invalid or missing
  4  the database was refused (written by a newer version, or a migration failed)
`;

const COMMON_OPTIONS = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  docs: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} satisfies ParseArgsConfig['options'];

type Options = { [K in keyof typeof COMMON_OPTIONS]?: (typeof COMMON_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

class UsageError extends Error {}

function configFrom(options: Options): Config {
  const config = loadConfig(options.config === undefined ? {} : { path: options.config });
  if (options['data-dir'] === undefined) return config;
  const dataDir = resolve(options['data-dir']);
  return {
    ...config,
    dataDir,
    databasePath: join(dataDir, 'tunnel-manager.db'),
    cloudflared: {
      ...config.cloudflared,
      configPath: config.source && config.cloudflared.configPath ? config.cloudflared.configPath : join(dataDir, 'cloudflared', 'config.yml'),
    },
  };
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

async function serve(options: Options): Promise<number> {
  const config = configFrom(options);
  const logger = createLogger({ level: config.logging.level });
  logger.info({ config: config.source ?? 'embedded defaults', dataDir: config.dataDir }, 'tunnel-manager starting');
  const service = await startService(config, logger);
  return new Promise<number>((resolveExit) => {
    let signals = 0;
    const shutdown = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(EXIT.failed);
      }
      logger.info({ signal }, 'shutting down');
      service
        .stop()
        .then(() => resolveExit(EXIT.ok))
        .catch((error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolveExit(EXIT.failed);
        });
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
  });
}

function withDatabase<T>(options: Options, use: (db: ReturnType<typeof openDatabase>['db'], config: Config) => T): T {
  const config = configFrom(options);
  const { db } = openDatabase(config.databasePath);
  try {
    return use(db, config);
  } finally {
    db.close();
  }
}

function machinesExport(positionals: string[], options: Options): number {
  if (positionals[0] !== 'export') throw new UsageError('usage: tunnel-manager machines export --format json|mermaid [--out DIR] [--docs FILE]');
  if (options.docs !== undefined) {
    writeFileSync(options.docs, renderMachinesDoc());
    print(`wrote ${options.docs}`);
    return EXIT.ok;
  }
  const format = options.format ?? 'json';
  if (format !== 'json' && format !== 'mermaid') throw new UsageError(`--format must be json or mermaid, not ${JSON.stringify(format)}`);
  const rendered = Object.entries(MACHINES).map(([name, machine]) => ({
    name,
    text: format === 'json' ? `${JSON.stringify(machine.toJSON(), null, 2)}\n` : machineToMermaid(machine),
  }));
  if (options.out !== undefined) {
    mkdirSync(options.out, { recursive: true });
    for (const { name, text } of rendered) {
      const file = join(options.out, `${name}.machine.${format === 'json' ? 'json' : 'mmd'}`);
      writeFileSync(file, text);
      print(`wrote ${file}`);
    }
    return EXIT.ok;
  }
  if (format === 'json') {
    print(JSON.stringify(Object.fromEntries(Object.entries(MACHINES).map(([name, machine]) => [name, machine.toJSON()])), null, 2));
  } else {
    for (const { name, text } of rendered) print(`%% ${name}\n${text}`);
  }
  return EXIT.ok;
}

function token(positionals: string[]): number {
  if (positionals[0] === 'new') {
    const value = generateToken();
    print(`token: ${value}\ntokenHash: ${hashToken(value)}`);
    return EXIT.ok;
  }
  if (positionals[0] === 'hash') {
    const value = readFileSync(0, 'utf8').trim();
    if (!value) throw new UsageError('token hash reads the token on standard input, e.g. `printf %s "$TOKEN" | tunnel-manager token hash`');
    print(hashToken(value));
    return EXIT.ok;
  }
  throw new UsageError('usage: tunnel-manager token new | tunnel-manager token hash');
}

function exitCodeFor(error: TunnelManagerError): number {
  if (error.code === 'CONFIG_INVALID' || error.code === 'CONFIG_NOT_FOUND') return EXIT.config;
  if (error.code === 'DATABASE_TOO_NEW' || error.code === 'MIGRATION_FAILED') return EXIT.database;
  return EXIT.failed;
}

export async function main(argv: string[]): Promise<number> {
  let parsed: { values: Options; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: COMMON_OPTIONS, allowPositionals: true, strict: true }) as never;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const { values: options, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (options.version) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    print(pkg.version);
    return EXIT.ok;
  }
  if (options.help || command === undefined || command === 'help') {
    print(USAGE);
    return command === undefined && !options.help ? EXIT.usage : EXIT.ok;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(options);
      case 'status':
        return withDatabase(options, (db, config) => {
          const status = readStatus(db, config);
          print(options.json ? JSON.stringify(status, null, 2) : formatStatus(status));
          return EXIT.ok;
        });
      case 'inspect':
        return withDatabase(options, (db) => {
          const limit = options.limit === undefined ? 30 : Number(options.limit);
          if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1');
          const report = readInspection(db, limit);
          print(options.json ? JSON.stringify(report, null, 2) : formatInspection(report));
          return EXIT.ok;
        });
      case 'machines':
        return machinesExport(rest, options);
      case 'migrate': {
        const config = configFrom(options);
        const { db, migration } = openDatabase(config.databasePath);
        db.close();
        print(
          migration.applied.length > 0
            ? `migrated ${config.databasePath} from version ${migration.from} to ${migration.to}: ${migration.applied.join(', ')}`
            : `${config.databasePath} is up to date (version ${migration.to})`,
        );
        return EXIT.ok;
      }
      case 'token':
        return token(rest);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\nRun \`tunnel-manager --help\` for the commands and options.\n`);
      return EXIT.usage;
    }
    const shape = toErrorShape(error);
    process.stderr.write(`${formatErrorForTerminal(shape)}\n`);
    return error instanceof TunnelManagerError ? exitCodeFor(error) : EXIT.failed;
  }
}
