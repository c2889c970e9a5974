import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Config } from './app/config/config.ts';
import type { Database } from './store/database.ts';
import { formatErrorForTerminal, toErrorShape, TunnelManagerError } from './errors.ts';
import { assertSupportedRuntime } from './node-runtime.ts';
import { packageVersion } from './package-root.ts';

// Every other module is imported by the command that needs it: `--help`, `status`, `token` or `call` must not pay
// for the Cloudflare SDK, dockerode, the sandbox or the service (ADR 0004 has the figures).

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
  serve [--listen HOST:PORT] [--edge-listen HOST:PORT] [--stdio --project NAME]
                              run the service (supervisor, tunnel, ingress, topology, MCP) until
                              SIGTERM/SIGINT/SIGHUP; without Cloudflare credentials it runs the sandbox
  status [--json]             the tunnel's state as last persisted by the service
  inspect [--json] [--limit N]
                              every actor's state and context, and recent transitions
  machines export --format json|mermaid [--out DIR] [--docs FILE]
                              write each machine's definition (JSON) or state diagram (Mermaid);
                              --docs regenerates docs/machines.md
  migrate                     create or upgrade the database, then exit
  backup [--out FILE]         an online copy of the database (default: <dataDir>/backups/…), service running or not
  restore FILE                put a backup in place of the database (service stopped; the current one is kept)
  recover [--dry-run] [--json]
                              rebuild the route ledger from the ownership markers in Cloudflare and the
                              managed rules in config.yml (service stopped); only adds missing rows
  doctor [--json] [--listen HOST:PORT] [--edge-listen HOST:PORT]
                              check what serve needs (data dir, token and its permissions, API,
                              clock, credentials, cloudflared, addresses, Docker, git); exit 1 on a problem
  config history [--limit N]  the versions of config.yml kept in git
  config rollback COMMIT      restore config.yml as it was at COMMIT (service stopped; when it runs,
                              use the MCP tool tunnel_rollback_config)
  sandbox-cloudflared tunnel --config F --metrics ADDR run ID
                              the sandbox's stand-in cloudflared (what the sandbox runs)
  call TOOL [key=value ...] [--as PROJECT | --token T] [--url URL] [--timeout SECONDS]
                              call one MCP tool; in the sandbox the URL and the project's token come
                              from <dataDir>/sandbox.json (default project: meta-supervisor);
                              gives up after --timeout seconds (default 60)
  token new                   print a new MCP token and the hash to put in the configuration
  token hash                  read a token on stdin, print its hash

Options:
  --config FILE               configuration file (else $TUNNEL_MANAGER_CONFIG, else embedded defaults)
  --data-dir DIR              override dataDir from the configuration (else $TUNNEL_MANAGER_DATA_DIR;
                              default ./data)
  --listen HOST:PORT          serve: MCP over HTTP here instead of mcp.listen (port 0: any free port)
  --edge-listen HOST:PORT     serve, sandbox: where the local edge listens (default 127.0.0.1:8790)
  --stdio --project NAME      serve: MCP over stdio, acting as project NAME
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
  'dry-run': { type: 'boolean' },
  limit: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  docs: { type: 'string' },
  listen: { type: 'string' },
  'edge-listen': { type: 'string' },
  stdio: { type: 'boolean' },
  project: { type: 'string' },
  as: { type: 'string' },
  token: { type: 'string' },
  url: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} satisfies ParseArgsConfig['options'];

type Options = { [K in keyof typeof COMMON_OPTIONS]?: (typeof COMMON_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

class UsageError extends Error {}

/** The options each command takes, besides --config, --data-dir, --help and --version (which all take). */
const OPTIONS_OF: Record<string, readonly (keyof typeof COMMON_OPTIONS)[]> = {
  serve: ['listen', 'edge-listen', 'stdio', 'project'],
  status: ['json'],
  inspect: ['json', 'limit'],
  machines: ['format', 'out', 'docs'],
  migrate: [],
  doctor: ['json', 'listen', 'edge-listen'],
  backup: ['out'],
  restore: [],
  recover: ['json', 'dry-run'],
  call: ['as', 'token', 'url', 'timeout'],
  config: ['json', 'limit'],
  token: [],
};
const EVERY_COMMAND_TAKES = ['config', 'data-dir', 'help', 'version'] as const;

/** An option given to a command it does not apply to is a usage error, never silently ignored. */
function checkOptionsApply(command: string, options: Options): void {
  const allowed = OPTIONS_OF[command];
  if (allowed === undefined) return;
  const given = Object.keys(options).filter((name) => options[name as keyof Options] !== undefined);
  const foreign = given.filter((name) => !(allowed as readonly string[]).includes(name) && !(EVERY_COMMAND_TAKES as readonly string[]).includes(name));
  if (foreign.length > 0) {
    const takes = [...allowed, 'config', 'data-dir'].map((name) => `--${name}`).join(', ');
    throw new UsageError(`${foreign.map((name) => `--${name}`).join(', ')} does not apply to \`${command}\` (it takes ${takes})`);
  }
}

/**
 * Commands that read what a service left behind must not create a database where there is none: that would
 * answer "unknown" as if all were well, and leave an empty database in a mistyped directory.
 */
function requireDatabase(config: Config): void {
  if (existsSync(config.databasePath)) return;
  throw new TunnelManagerError({
    code: 'DATABASE_NOT_FOUND',
    message: `No tunnel-manager database at ${config.databasePath}: no service has run with the data directory ${config.dataDir}.`,
    fix: 'Point --data-dir (or $TUNNEL_MANAGER_DATA_DIR, or dataDir in --config) at the directory the service uses, or start the service there first with `tunnel-manager serve`.',
    details: { databasePath: config.databasePath, dataDir: config.dataDir },
  });
}

async function configFrom(options: Options): Promise<Config> {
  const { loadConfig } = await import('./app/config/config.ts');
  return loadConfig({
    ...(options.config === undefined ? {} : { path: options.config }),
    ...(options['data-dir'] === undefined ? {} : { dataDir: resolve(options['data-dir']) }),
  });
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function servicePidfile(config: Config): string {
  return join(config.dataDir, 'tunnel-manager.pid');
}

/** The pid of a service running on this data directory, if any. */
async function runningService(config: Config): Promise<number | null> {
  const { isProcessRunning } = await import('./cloudflared/process-identity.ts');
  const file = servicePidfile(config);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessRunning(pid) ? pid : null;
}

/** Commands that replace or rebuild what the service writes refuse while it runs: it is the only writer. */
async function requireServiceStopped(config: Config, why: string): Promise<void> {
  const running = await runningService(config);
  if (running === null) return;
  throw new TunnelManagerError({
    code: 'INPUT_INVALID',
    message: `The service (pid ${running}) is running on ${config.dataDir}: ${why}.`,
    fix: `Stop it first (systemctl stop tunnel-manager, or kill -TERM ${running}), run this again, then start it.`,
    details: { pid: running, dataDir: config.dataDir },
  });
}

async function serve(options: Options): Promise<number> {
  const config = await configFrom(options);
  if (options.stdio && !options.project) throw new UsageError('--stdio needs --project NAME: the project the stdio client acts as');
  const other = await runningService(config);
  if (other !== null) {
    throw new TunnelManagerError({
      code: 'INPUT_INVALID',
      message: `Another tunnel-manager (pid ${other}) already serves ${config.dataDir}.`,
      fix: `Stop it first (kill -TERM ${other}), or use another --data-dir.`,
      details: { pid: other, dataDir: config.dataDir },
    });
  }
  const [{ createLogger, prettyDestination, resolveLogFormat }, { startMcpService }] = await Promise.all([import('./app/config/logger.ts'), import('./root/mcp-service.ts')]);
  const pretty = resolveLogFormat(config.logging.format, process.stderr.isTTY === true) === 'pretty';
  const logger = createLogger({ level: config.logging.level, ...(pretty ? { destination: prettyDestination() } : {}) });
  logger.info({ config: config.source ?? 'embedded defaults', dataDir: config.dataDir }, 'tunnel-manager starting');
  // A stop asked for while the service boots is kept and carried out once it has started: the default action of
  // these signals would kill the process halfway, leaving the cloudflared it had just spawned with nobody to stop it.
  // One listener for the whole life of the process, whose behaviour changes once started: swapping listeners would
  // close and reopen libuv's signal handle, and a signal queued for the closed one is dropped (seen: a SIGTERM lost).
  const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  let stopDuringBoot: NodeJS.Signals | null = null;
  let onStop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stop asked for during start-up: stopping once started');
    stopDuringBoot ??= signal;
  };
  for (const signal of STOP_SIGNALS) process.on(signal, (received: NodeJS.Signals) => onStop(received));
  const service = await startMcpService(config, {
    logger,
    ...(options.listen ? { mcpListen: options.listen } : {}),
    ...(options['edge-listen'] ? { edgeListen: options['edge-listen'] } : {}),
    ...(options.stdio && options.project ? { stdioProject: options.project } : {}),
  }).catch(async (error: unknown) => {
    // An address another program holds is the machine's problem, not a bug: say which listener and how to move it.
    const [{ addressInUse }, { DEFAULT_EDGE_LISTEN }] = await Promise.all([import('./app/operations/listen-conflict.ts'), import('./app/config/sandbox-mode.ts')]);
    throw (
      addressInUse(error, {
        mcp: options.listen ?? config.mcp.listen,
        edge: config.cloudflare.apiBaseUrl ? null : (options['edge-listen'] ?? DEFAULT_EDGE_LISTEN),
        metrics: config.metrics.listen === 'off' ? null : config.metrics.listen,
      }) ?? error
    );
  });
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(servicePidfile(config), `${process.pid}\n`);
  const { startHeapTrimmer } = await import('./app/schedules/heap-trim.ts');
  const heap = startHeapTrimmer();
  const out = options.stdio ? process.stderr : process.stdout;
  const say = (text: string) => out.write(`${text}\n`);
  if (service.sandboxInfo) {
    const info = service.sandboxInfo;
    const sandboxFile = join(config.dataDir, 'sandbox.json');
    // The demo tokens go to a terminal, never to a log: under systemd (the journal) or with the output redirected to
    // a file, the banner says where they are instead.
    const tokens = out.isTTY === true
      ? ['  MCP bearer tokens:', ...Object.entries(info.tokens).map(([project, token]) => `    ${project.padEnd(16)} ${token}`), `  all of this is in ${sandboxFile}`]
      : [`  MCP bearer tokens: in ${sandboxFile} (mode 0600; not printed, because this output is not a terminal)`, `  the rest is in ${sandboxFile} too`];
    say(
      [
        'tunnel-manager is running in sandbox mode (no Cloudflare credentials configured).',
        `  MCP (Streamable HTTP): ${info.mcpUrl}`,
        `  edge (the public side): ${info.edgeUrl}   e.g. curl -H 'Host: app.${config.tunnel.defaultZone}' ${info.edgeUrl}/`,
        `  Cloudflare API emulator: ${info.cloudflareApiUrl}`,
        info.cloudflared.kind === 'real'
          ? `  cloudflared: the real one, ${info.cloudflared.version} (${info.cloudflared.command.join(' ')}, from ${info.cloudflared.chosenBy}), connected to the edge at ${info.edgeTunnelAddress ?? '?'}`
          : '  cloudflared: the stand-in (no real cloudflared found: set cloudflared.command or TM_CLOUDFLARED, or put cloudflared on PATH)',
        ...tokens,
      ].join('\n'),
    );
  } else if (service.mcp) {
    say(`tunnel-manager is running: MCP at ${service.mcp.url}`);
  }
  // systemd (Type=notify): ready once MCP listens and cloudflared serves, or after a minute with the reason, so a
  // tunnel that cannot start yet does not keep the manager that supervises it from being "started".
  const { sdNotify } = await import('./app/operations/sd-notify.ts');
  void (async () => {
    const deadline = Date.now() + 60_000;
    while (!service.backend.status().state.startsWith('running') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    const state = service.backend.status().state;
    await sdNotify({ READY: '1', STATUS: state.startsWith('running') ? `serving: tunnel ${state}` : `started; tunnel ${state}, not serving yet` });
  })();
  return new Promise<number>((resolveExit) => {
    let signals = 0;
    const shutdown = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(EXIT.failed);
      }
      logger.info({ signal }, 'shutting down');
      void sdNotify({ STOPPING: '1', STATUS: `stopping (${signal})` });
      heap.stop();
      service
        .stop()
        .then(() => {
          rmSync(servicePidfile(config), { force: true });
          resolveExit(EXIT.ok);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolveExit(EXIT.failed);
        });
    };
    // From now on a stop signal shuts down (SIGHUP: the terminal that ran `serve` in the foreground closed).
    onStop = shutdown;
    if (stopDuringBoot !== null) shutdown(stopDuringBoot);
  });
}

async function withDatabase<T>(options: Options, use: (db: Database, config: Config) => T | Promise<T>): Promise<T> {
  const config = await configFrom(options);
  requireDatabase(config);
  const { openDatabase } = await import('./store/database.ts');
  const { db } = openDatabase(config.databasePath);
  try {
    return await use(db, config);
  } finally {
    db.close();
  }
}

async function machinesExport(positionals: string[], options: Options): Promise<number> {
  if (positionals[0] !== 'export') throw new UsageError('usage: tunnel-manager machines export --format json|mermaid [--out DIR] [--docs FILE]');
  const [{ MACHINES }, { machineToMermaid }, { renderMachinesDoc }, { machineConfigOf }] = await Promise.all([
    import('../machines/index.ts'),
    import('./app/operations/machine-diagram.ts'),
    import('./app/operations/machines-doc.ts'),
    import('./app/operations/machine-export.ts'),
  ]);
  if (options.docs !== undefined) {
    writeFileSync(options.docs, renderMachinesDoc());
    print(`wrote ${options.docs}`);
    return EXIT.ok;
  }
  const format = options.format ?? 'json';
  if (format !== 'json' && format !== 'mermaid') throw new UsageError(`--format must be json or mermaid, not ${JSON.stringify(format)}`);
  const rendered = Object.entries(MACHINES).map(([name, machine]) => ({
    name,
    text: format === 'json' ? `${JSON.stringify(machineConfigOf(machine), null, 2)}\n` : machineToMermaid(machine),
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
    print(JSON.stringify(Object.fromEntries(Object.entries(MACHINES).map(([name, machine]) => [name, machineConfigOf(machine)])), null, 2));
  } else {
    for (const { name, text } of rendered) print(`%% ${name}\n${text}`);
  }
  return EXIT.ok;
}

async function configCommand(positionals: string[], options: Options): Promise<number> {
  const config = await configFrom(options);
  const [sub, commit] = positionals;
  if (sub === 'history') {
    if (!existsSync(config.cloudflared.configPath) && !existsSync(config.databasePath)) requireDatabase(config);
    const limit = options.limit === undefined ? 20 : Number(options.limit);
    const { readConfigHistory } = await import('./cloudflared/ingress-loader.ts');
    const versions = await readConfigHistory(config.cloudflared.configPath, limit);
    if (options.json) print(JSON.stringify(versions, null, 2));
    else if (versions.length === 0) print(`No history yet for ${config.cloudflared.configPath}.`);
    else for (const v of versions) print(`${v.commit.slice(0, 12)}  ${v.date}  ${v.subject}`);
    return EXIT.ok;
  }
  if (sub === 'rollback') {
    if (!commit) throw new UsageError('usage: tunnel-manager config rollback COMMIT (see `tunnel-manager config history`)');
    const running = await runningService(config);
    if (running !== null) {
      throw new TunnelManagerError({
        code: 'INPUT_INVALID',
        message: `The service (pid ${running}) owns ${config.cloudflared.configPath}: only its ingress actor may write it.`,
        fix: `Ask it through MCP as the meta-supervisor: tunnel_rollback_config { "commit": "${commit}" } (it validates, writes, commits and reloads), or stop the service and run this again.`,
        details: { pid: running },
      });
    }
    const { IngressLoader } = await import('./cloudflared/ingress-loader.ts');
    const loader = await IngressLoader.open({ configPath: config.cloudflared.configPath, gitBackup: true });
    const result = await loader.rollbackTo(commit);
    print(
      `restored ${config.cloudflared.configPath} from ${result.restoredFrom.slice(0, 12)}${result.commit ? ` as commit ${result.commit.slice(0, 12)}` : ' (no change)'}; ` +
        'cloudflared loads it when the service starts (managed rules follow the route ledger).',
    );
    return EXIT.ok;
  }
  throw new UsageError('usage: tunnel-manager config history | tunnel-manager config rollback COMMIT');
}

async function call(positionals: string[], options: Options): Promise<number> {
  const [tool, ...pairs] = positionals;
  if (!tool) throw new UsageError('usage: tunnel-manager call TOOL [key=value ...] [--as PROJECT | --token T] [--url URL] [--timeout SECONDS]');
  const config = await configFrom(options);
  const sandboxFile = join(config.dataDir, 'sandbox.json');
  const sandbox = existsSync(sandboxFile) ? (JSON.parse(readFileSync(sandboxFile, 'utf8')) as { mcpUrl?: string; tokens?: Record<string, string> }) : {};
  const url = options.url ?? sandbox.mcpUrl ?? `http://${config.mcp.listen}/mcp`;
  const project = options.as ?? 'meta-supervisor';
  const bearer = options.token ?? process.env.TUNNEL_MANAGER_TOKEN ?? sandbox.tokens?.[project];
  if (!bearer) {
    throw new TunnelManagerError({
      code: 'UNAUTHENTICATED',
      message: `No token for ${project}: not given with --token or $TUNNEL_MANAGER_TOKEN, and not in ${sandboxFile}.`,
      fix: 'Pass --token with the project\'s MCP token (or set TUNNEL_MANAGER_TOKEN).',
      details: { project },
    });
  }
  const timeoutSeconds = options.timeout === undefined ? undefined : Number(options.timeout);
  if (timeoutSeconds !== undefined && !(Number.isFinite(timeoutSeconds) && timeoutSeconds > 0)) throw new UsageError('--timeout must be a number of seconds above 0');
  const { callTool, parseToolArguments } = await import('./mcp/call-tool.ts');
  const outcome = await callTool(url, bearer, tool, parseToolArguments(pairs), timeoutSeconds === undefined ? {} : { timeoutMs: timeoutSeconds * 1000 });
  const text = JSON.stringify(outcome.result, null, 2);
  if (outcome.isError) {
    process.stderr.write(`${text}\n`);
    return EXIT.failed;
  }
  print(text);
  return EXIT.ok;
}

async function token(positionals: string[]): Promise<number> {
  const { generateToken, hashToken } = await import('./secrets/token.ts');
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
  // The stand-in takes cloudflared's own command line: no parsing of ours.
  if (argv[0] === 'sandbox-cloudflared') {
    const { runStandinCloudflared } = await import('./sandbox/standin-cloudflared/run.ts');
    return runStandinCloudflared(argv.slice(1));
  }
  let parsed: { values: Options; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: COMMON_OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const { values: options, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (options.version) {
    print(packageVersion());
    return EXIT.ok;
  }
  if (options.help || command === undefined || command === 'help') {
    print(USAGE);
    return command === undefined && !options.help ? EXIT.usage : EXIT.ok;
  }
  try {
    assertSupportedRuntime();
    checkOptionsApply(command, options);
    switch (command) {
      case 'serve':
        return await serve(options);
      case 'status':
        return await withDatabase(options, async (db, config) => {
          const { readStatus, formatStatus } = await import('./app/use-cases/tunnel-status.ts');
          const status = readStatus(db, config);
          print(options.json ? JSON.stringify(status, null, 2) : formatStatus(status));
          return EXIT.ok;
        });
      case 'inspect':
        return await withDatabase(options, async (db) => {
          const { formatInspection, readInspection } = await import('./app/operations/inspection.ts');
          const limit = options.limit === undefined ? 30 : Number(options.limit);
          if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1');
          const report = readInspection(db, limit);
          print(options.json ? JSON.stringify(report, null, 2) : formatInspection(report));
          return EXIT.ok;
        });
      case 'machines':
        return await machinesExport(rest, options);
      case 'migrate': {
        const config = await configFrom(options);
        const { openDatabase } = await import('./store/database.ts');
        const { db, migration } = openDatabase(config.databasePath);
        db.close();
        print(
          migration.applied.length > 0
            ? `migrated ${config.databasePath} from version ${migration.from} to ${migration.to}: ${migration.applied.join(', ')}`
            : `${config.databasePath} is up to date (version ${migration.to})`,
        );
        return EXIT.ok;
      }
      case 'doctor': {
        const config = await configFrom(options);
        const [{ runDoctor, formatDoctor }, { STANDIN_CLOUDFLARED_BUNDLE }] = await Promise.all([import('./app/operations/doctor.ts'), import('./package-root.ts')]);
        const checks = await runDoctor(
          config,
          { servicePidfile: servicePidfile(config), standin: STANDIN_CLOUDFLARED_BUNDLE },
          { ...(options.listen ? { listen: options.listen } : {}), ...(options['edge-listen'] ? { edgeListen: options['edge-listen'] } : {}) },
        );
        print(options.json ? JSON.stringify({ ok: checks.every((c) => c.status !== 'problem'), checks }, null, 2) : formatDoctor(checks));
        return checks.some((c) => c.status === 'problem') ? EXIT.failed : EXIT.ok;
      }
      case 'backup':
        return await withDatabase(options, async (_db, config) => {
          const [{ backupDatabase, backupFileName }, { backupDir }] = await Promise.all([import('./store/backup.ts'), import('./app/schedules/backup-schedule.ts')]);
          const target = options.out === undefined ? join(backupDir(config), backupFileName()) : resolve(options.out);
          const started = performance.now();
          const written = await backupDatabase(_db, target);
          print(`wrote ${written.path} (${written.bytes} bytes, ${Math.round(performance.now() - started)} ms)`);
          return EXIT.ok;
        });
      case 'restore': {
        const file = rest[0];
        if (file === undefined) throw new UsageError('usage: tunnel-manager restore FILE (a file written by `tunnel-manager backup`)');
        const config = await configFrom(options);
        await requireServiceStopped(config, 'a database cannot be replaced under it');
        const [{ restoreDatabase }, { loadMigrations }] = await Promise.all([import('./store/backup.ts'), import('./store/migrations.ts')]);
        const latest = Math.max(...loadMigrations().map((migration) => migration.version));
        const started = performance.now();
        const restored = await restoreDatabase(resolve(file), config.databasePath, latest);
        // A backup is input from outside: each route it brings back is served again only once the next start has
        // checked it against the records, the projects and the ports (src/app/effects/route-verification.ts).
        const [{ openDatabase }, { RoutesRepository }] = await Promise.all([import('./store/database.ts'), import('./store/routes-repository.ts')]);
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
      }
      case 'recover': {
        if (rest.length > 0) throw new UsageError('usage: tunnel-manager recover [--dry-run] [--json]');
        const config = await configFrom(options);
        await requireServiceStopped(config, 'the ledger cannot be rebuilt under it (it is the only writer of the routes)');
        const { recoverFromConfig, formatRecovery } = await import('./app/operations/recover.ts');
        const report = await recoverFromConfig(config, { dryRun: options['dry-run'] === true });
        print(options.json ? JSON.stringify(report, null, 2) : formatRecovery(report));
        return EXIT.ok;
      }
      case 'token':
        return await token(rest);
      case 'call':
        return await call(rest, options);
      case 'config':
        return await configCommand(rest, options);
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
