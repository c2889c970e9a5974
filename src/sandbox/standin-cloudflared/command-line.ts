/**
 * The stand-in's command line, read the way cloudflared reads it:
 *   cloudflared [--no-autoupdate] tunnel [flags] run [flags] [TUNNEL]
 * Flags may come before or after `run`, as `--flag value`, `--flag=value` or with a single dash.
 * An unknown flag is refused with urfave/cli's wording, as cloudflared does.
 *
 * Two extra commands that cloudflared does not have belong to the sandbox:
 *   standin-edge --listen HOST:PORT [--tunnel-listen HOST:PORT --ca-dir DIR]
 *                                     runs the sandbox edge (src/sandbox/edge/edge.ts); with --tunnel-listen the real
 *                                     cloudflared can connect to it too
 *   version / --version               prints a version line
 */
export interface TunnelRunOptions {
  kind: 'tunnel-run';
  configPath: string | null;
  metricsAddress: string | null;
  /** Milliseconds; cloudflared's default is 30 s. */
  gracePeriodMs: number;
  pidfile: string | null;
  loglevel: string;
  /** Address of the sandbox edge to connect to (cloudflared's hidden `--edge`); env TM_STANDIN_EDGE otherwise. */
  edge: string | null;
  haConnections: number | null;
  /** From the last positional argument; the config file's `tunnel:` key is the fallback. */
  tunnelId: string | null;
}

export type StandinCommand =
  | TunnelRunOptions
  | { kind: 'edge'; listen: string; tunnelListen: string | null; caDir: string | null }
  | { kind: 'version' }
  | { kind: 'usage-error'; message: string };

/** Flags that take a value (cloudflared's tunnel and run flags we accept; most are ignored). */
const VALUE_FLAGS = new Set([
  'config',
  'metrics',
  'grace-period',
  'loglevel',
  'transport-loglevel',
  'pidfile',
  'logfile',
  'log-directory',
  'edge',
  'cacert',
  'edge-bind-address',
  'protocol',
  'origincert',
  'credentials-file',
  'cred-file',
  'credentials-contents',
  'token',
  'ha-connections',
  'edge-ip-version',
  'region',
  'retries',
  'autoupdate-freq',
  'metrics-update-freq',
  'tag',
  'label',
  'output',
]);

/** The flags of `standin-edge`. */
const EDGE_FLAGS = new Set(['listen', 'tunnel-listen', 'ca-dir']);

/** Boolean flags we accept (and ignore). */
const BOOLEAN_FLAGS = new Set(['no-autoupdate', 'post-quantum', 'no-tls-verify', 'management-diagnostics']);

/** Go's time.ParseDuration for the units cloudflared users write: "30s", "1m30s", "500ms", "1h". */
export function parseGoDuration(text: string): number | null {
  if (text === '0') return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return null;
  const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(match[1]) * (unitMs[match[2] ?? ''] ?? 0);
  }
  return Math.round(total);
}

function incorrectUsage(flag: string): StandinCommand {
  return { kind: 'usage-error', message: `Incorrect Usage: flag provided but not defined: -${flag}` };
}

interface ParsedFlags {
  positionals: string[];
  values: Map<string, string>;
}

/** One flag at argv[i]: records its value and answers the index of the last argument it used, or a command to stop with. */
function readFlag(argv: readonly string[], i: number, arg: string, parsed: ParsedFlags): number | StandinCommand {
  const body = arg.replace(/^--?/, '');
  const eq = body.indexOf('=');
  const name = eq === -1 ? body : body.slice(0, eq);
  if (name === 'version' || name === 'v') return { kind: 'version' };
  const edgeFlag = EDGE_FLAGS.has(name) && parsed.positionals[0] === 'standin-edge';
  if (!edgeFlag && BOOLEAN_FLAGS.has(name)) return i;
  if (!edgeFlag && !VALUE_FLAGS.has(name)) return incorrectUsage(name);
  const value = eq === -1 ? argv[i + 1] : body.slice(eq + 1);
  if (value === undefined) return { kind: 'usage-error', message: `flag needs an argument: -${name}` };
  parsed.values.set(name, value);
  return eq === -1 ? i + 1 : i;
}

/** Positional arguments and flag values, flags anywhere; a version flag or a bad flag ends it as a command. */
function readArguments(argv: readonly string[]): ParsedFlags | StandinCommand {
  const parsed: ParsedFlags = { positionals: [], values: new Map() };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      parsed.positionals.push(arg);
      continue;
    }
    const next = readFlag(argv, i, arg, parsed);
    if (typeof next !== 'number') return next;
    i = next;
  }
  return parsed;
}

function edgeCommand(values: Map<string, string>): StandinCommand {
  const listen = values.get('listen');
  if (listen === undefined) return { kind: 'usage-error', message: 'standin-edge requires --listen HOST:PORT' };
  const tunnelListen = values.get('tunnel-listen') ?? null;
  const caDir = values.get('ca-dir') ?? null;
  if (tunnelListen !== null && caDir === null) return { kind: 'usage-error', message: 'standin-edge --tunnel-listen needs --ca-dir DIR (where the edge keeps the CA cloudflared trusts)' };
  return { kind: 'edge', listen, tunnelListen, caDir };
}

/** --grace-period (a Go duration, default 30 s) and --ha-connections (a whole number >= 1), or the usage error. */
function numericFlags(values: Map<string, string>): { gracePeriodMs: number; haConnections: number | null } | StandinCommand {
  const grace = values.get('grace-period');
  const gracePeriodMs = grace === undefined ? 30_000 : parseGoDuration(grace);
  if (gracePeriodMs === null) {
    return { kind: 'usage-error', message: `invalid value "${grace}" for flag -grace-period: parse error (expected a duration such as 30s)` };
  }
  const ha = values.get('ha-connections');
  const haConnections = ha === undefined ? null : Number(ha);
  if (haConnections !== null && (!Number.isInteger(haConnections) || haConnections < 1)) {
    return { kind: 'usage-error', message: `invalid value "${ha}" for flag -ha-connections: expected a whole number of at least 1` };
  }
  return { gracePeriodMs, haConnections };
}

function tunnelRunCommand(argv: readonly string[], { positionals, values }: ParsedFlags): StandinCommand {
  if (positionals[0] !== 'tunnel' || positionals[1] !== 'run') {
    return {
      kind: 'usage-error',
      message: `the stand-in cloudflared only runs tunnels: expected "tunnel [flags] run [flags] TUNNEL", got "${argv.join(' ')}"`,
    };
  }
  if (positionals.length > 3) {
    return { kind: 'usage-error', message: `"cloudflared tunnel run" accepts only one argument, the ID or name of the tunnel; got ${positionals.slice(2).join(' ')}` };
  }
  const numbers = numericFlags(values);
  if ('kind' in numbers) return numbers;
  const { gracePeriodMs, haConnections } = numbers;
  return {
    kind: 'tunnel-run',
    configPath: values.get('config') ?? null,
    metricsAddress: values.get('metrics') ?? null,
    gracePeriodMs,
    pidfile: values.get('pidfile') ?? null,
    loglevel: values.get('loglevel') ?? 'info',
    edge: values.get('edge') ?? null,
    haConnections,
    tunnelId: positionals[2] ?? null,
  };
}

export function parseStandinCommandLine(argv: readonly string[]): StandinCommand {
  const parsed = readArguments(argv);
  if ('kind' in parsed) return parsed;
  if (parsed.positionals[0] === 'version') return { kind: 'version' };
  if (parsed.positionals[0] === 'standin-edge') return edgeCommand(parsed.values);
  return tunnelRunCommand(argv, parsed);
}
