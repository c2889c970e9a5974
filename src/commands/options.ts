import type { ParseArgsConfig } from 'node:util';

/** Exit codes, documented in `--help` and docs/cli.md. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  config: 3,
  database: 4,
} as const;

/** Every option of every command: `node:util`'s parseArgs reads them all, then each command says which it takes. */
export const COMMON_OPTIONS = {
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

type OptionName = keyof typeof COMMON_OPTIONS;
export type Options = { [K in OptionName]?: (typeof COMMON_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** A command line that names no command, or a command with options it does not take: exit 2 with the reason. */
export class UsageError extends Error {}

/** One CLI command: its positionals (after the command's name) and the parsed options in, an exit code out. */
export type Command = (positionals: string[], options: Options) => Promise<number>;

/** The options each command takes, besides --config, --data-dir, --help and --version (which all take). */
const OPTIONS_OF: Record<string, readonly OptionName[]> = {
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
const EVERY_COMMAND_TAKES: readonly string[] = ['config', 'data-dir', 'help', 'version'];

/** An option given to a command it does not apply to is a usage error, never silently ignored. */
export function checkOptionsApply(command: string, options: Options): void {
  const allowed: readonly string[] | undefined = OPTIONS_OF[command];
  if (allowed === undefined) return;
  const given = Object.entries(options).filter(([, value]) => value !== undefined).map(([name]) => name);
  const foreign = given.filter((name) => !allowed.includes(name) && !EVERY_COMMAND_TAKES.includes(name));
  if (foreign.length > 0) {
    const takes = [...allowed, 'config', 'data-dir'].map((name) => `--${name}`).join(', ');
    throw new UsageError(`${foreign.map((name) => `--${name}`).join(', ')} does not apply to \`${command}\` (it takes ${takes})`);
  }
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
