import { parseArgs } from 'node:util';
import { formatErrorForTerminal, toErrorShape, TunnelManagerError } from './errors.ts';
import { assertSupportedRuntime } from './node-runtime.ts';
import { packageVersion } from './package-root.ts';
import { checkOptionsApply, COMMON_OPTIONS, EXIT, print, UsageError, type Command, type Options } from './commands/options.ts';
import { USAGE } from './commands/usage.ts';

export { EXIT } from './commands/options.ts';

// The command line is parsed here and each command (src/commands/, one file each) is imported only when it runs:
// `--help`, `status`, `token` or `call` must not pay for the Cloudflare SDK, dockerode, the sandbox or the tunnel
// manager itself (ADR 0004 has the figures; the build makes a chunk per command).
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./commands/serve.ts')).serve,
  status: async () => (await import('./commands/status.ts')).status,
  inspect: async () => (await import('./commands/inspect.ts')).inspect,
  machines: async () => (await import('./commands/machines.ts')).machines,
  migrate: async () => (await import('./commands/migrate.ts')).migrate,
  doctor: async () => (await import('./commands/doctor.ts')).doctor,
  backup: async () => (await import('./commands/backup.ts')).backup,
  restore: async () => (await import('./commands/restore.ts')).restore,
  recover: async () => (await import('./commands/recover.ts')).recover,
  token: async () => (await import('./commands/token.ts')).token,
  call: async () => (await import('./commands/call.ts')).call,
  config: async () => (await import('./commands/config.ts')).configCommand,
};

function exitCodeFor(error: TunnelManagerError): number {
  if (error.code === 'CONFIG_INVALID' || error.code === 'CONFIG_NOT_FOUND') return EXIT.config;
  if (error.code === 'DATABASE_TOO_NEW' || error.code === 'MIGRATION_FAILED') return EXIT.database;
  return EXIT.failed;
}

async function run(command: string, positionals: string[], options: Options): Promise<number> {
  try {
    assertSupportedRuntime();
    checkOptionsApply(command, options);
    const load = COMMANDS[command];
    if (load === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    const commandFn = await load();
    return await commandFn(positionals, options);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\nRun \`tunnel-manager --help\` for the commands and options.\n`);
      return EXIT.usage;
    }
    process.stderr.write(`${formatErrorForTerminal(toErrorShape(error))}\n`);
    return error instanceof TunnelManagerError ? exitCodeFor(error) : EXIT.failed;
  }
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
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
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
  return run(command, rest, options);
}
