import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { isListening } from '../../cloudflared/metrics-address.ts';
import { isProcessRunning } from '../../cloudflared/process-identity.ts';
import { listenersOn, pidListensOn } from '../../cloudflared/socket-owner.ts';
import type { Config } from '../config/config.ts';
import { DEFAULT_METRICS_LISTEN } from '../config/config.ts';
import { DEFAULT_EDGE_LISTEN, DEFAULT_METRICS_ADDRESS } from '../config/sandbox-mode.ts';

/**
 * doctor's checks of the addresses `serve` listens on: which addresses (the sandbox's own, from sandbox.json and its
 * kept ports, or the configured ones), and who holds each. "This manager" is claimed only for the process that serves
 * this data directory (its pidfile's pid, holding this directory's database open) and only when the kernel says that
 * process holds the socket; anyone else on the address is named, with its pid and command line.
 */

export interface AddressCheck {
  name: string;
  status: 'ok' | 'warning' | 'problem' | 'skipped';
  detail: string;
  fix?: string;
}

export interface AddressOptions {
  /** What `serve` would be given: --listen and --edge-listen (doctor takes the same options). */
  listen?: string;
  edgeListen?: string;
}

interface Owner {
  pid: number;
  what: string;
}

function check(name: string, status: AddressCheck['status'], detail: string, fix?: string): AddressCheck {
  return { name, status, detail, ...(fix === undefined ? {} : { fix }) };
}

function readJson(file: string): unknown {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return parsed;
  } catch {
    return null;
  }
}

/** What doctor reads of a running sandbox's sandbox.json: its pid and where it listens. */
const RunningSandbox = z.object({ pid: z.number(), mcpUrl: z.string(), edgeUrl: z.string(), metricsUrl: z.string().optional() }).passthrough();
type RunningSandbox = z.infer<typeof RunningSandbox>;

/** The cloudflared pidfile the spawn driver writes. */
const CloudflaredPidfile = z.object({ pid: z.unknown(), metricsAddress: z.unknown() }).partial().passthrough();

/** Whether process `pid` holds `file` open (null when /proc does not say: another user's process). */
function holdsOpen(pid: number, file: string): boolean | null {
  let target: string;
  try {
    target = realpathSync(file);
  } catch {
    return false;
  }
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
      } catch {
        return false;
      }
    });
  } catch {
    return null;
  }
}

/**
 * The manager serving this data directory: the live pid of its pidfile, holding this directory's database open.
 * A pidfile naming a live process that does not (a stale file whose pid was reused) is no manager.
 */
export function managerOf(config: Config, pidfile: string): { pid: number; verified: boolean } | null {
  const pid = Number(readJson(pidfile) ?? NaN);
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessRunning(pid)) return null;
  const holds = holdsOpen(pid, config.databasePath);
  if (holds === false) return null;
  return { pid, verified: holds === true };
}

/** The cloudflared this manager started (the spawn driver's pidfile), when it is alive. */
function cloudflaredOf(config: Config): { pid: number; metricsAddress: string | null } | null {
  const parsed = CloudflaredPidfile.safeParse(readJson(join(config.dataDir, 'cloudflared', 'cloudflared.pid')));
  const file = parsed.success ? parsed.data : null;
  const pid = Number(file?.pid);
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessRunning(pid)) return null;
  return { pid, metricsAddress: typeof file?.metricsAddress === 'string' ? file.metricsAddress : null };
}

const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));
const hostPortOf = (url: string): string => new URL(url).host;

/** One address: free, held by one of `owners` (the kernel says so), or held by someone else (named when /proc says who). */
async function checkAddress(name: string, address: string, owners: Owner[], move: string): Promise<AddressCheck> {
  if (!(await isListening(address))) return check(name, 'ok', `${address} is free`);
  const port = portOf(address);
  for (const owner of owners) {
    const holds = await pidListensOn(owner.pid, port);
    if (holds === true) return check(name, 'ok', `${address} is ${owner.what} (pid ${owner.pid})`);
  }
  const holders = await listenersOn(port);
  const cloudflared = holders.find((holder) => /(^|\/)cloudflared(\s|$)/.test(holder.command.split(' ')[0] ?? ''));
  if (name === 'cloudflared.metricsAddress' && cloudflared !== undefined) {
    return check(name, 'ok', `${address} is cloudflared (pid ${cloudflared.pid}, not started by this data directory's manager: it adopts it at start, or it runs under systemd or Docker)`);
  }
  const who = holders.length > 0 ? holders.map((holder) => `pid ${holder.pid}: ${holder.command || '(no command line)'}`).join('; ') : 'a process this user cannot see';
  return check(name, 'problem', `${address} is taken by another program (${who})`, `Find it with \`ss -ltnp 'sport = :${port}'\` and stop it, or ${move}.`);
}

/** An address `serve` does not fix in advance (port 0): nothing to check. */
function chosenAtStart(name: string, what: string): AddressCheck {
  return check(name, 'skipped', `${what}: a free port is chosen at start`);
}

/** The sandbox's cloudflared metrics addresses: configured, or the two it chose once and keeps in the data directory. */
function sandboxCloudflaredAddresses(config: Config): string[] | null {
  const configured = config.cloudflared.metricsAddress;
  if (configured !== DEFAULT_METRICS_ADDRESS && !configured.endsWith(':0')) return [configured];
  const kept = readJson(join(config.dataDir, 'sandbox', 'metrics-addresses.json'));
  return Array.isArray(kept) && kept.every((address) => typeof address === 'string') ? kept : null;
}

interface Owners {
  manager: Owner[];
  cloudflared: Owner[];
}

const MOVE = {
  mcp: 'serve elsewhere: --listen HOST:PORT (mcp.listen; port 0 picks a free one)',
  edge: 'serve the sandbox edge elsewhere: --edge-listen HOST:PORT (127.0.0.1:0 picks a free one)',
  metrics: 'set metrics.listen to another address (port 0 picks a free one) or off',
  cloudflared: 'set cloudflared.metricsAddress to a free address',
} as const;

async function productionAddresses(config: Config, owners: Owners, options: AddressOptions): Promise<AddressCheck[]> {
  return [
    await checkAddress('cloudflared.metricsAddress', config.cloudflared.metricsAddress, owners.cloudflared, MOVE.cloudflared),
    await checkAddress('mcp.listen', options.listen ?? config.mcp.listen, owners.manager, MOVE.mcp),
    config.metrics.listen === 'off' ? check('metrics.listen', 'skipped', 'off') : await checkAddress('metrics.listen', config.metrics.listen, owners.manager, MOVE.metrics),
  ];
}

/** The sandbox cloudflared's metrics addresses: the live one and, when two were kept, the replica's. */
async function sandboxCloudflaredChecks(config: Config, cloudflared: { metricsAddress: string | null } | null, owners: Owners): Promise<AddressCheck[]> {
  const addresses = cloudflared?.metricsAddress ? [cloudflared.metricsAddress] : sandboxCloudflaredAddresses(config);
  if (addresses === null) return [chosenAtStart('cloudflared.metricsAddress', "the sandbox's cloudflared")];
  const checks: AddressCheck[] = [];
  for (const [index, address] of addresses.entries()) {
    const result = await checkAddress('cloudflared.metricsAddress', address, owners.cloudflared, MOVE.cloudflared);
    checks.push(addresses.length > 1 ? { ...result, detail: `${result.detail} (${index === 0 ? 'live' : 'replica'} address kept in ${join(config.dataDir, 'sandbox')})` } : result);
  }
  return checks;
}

/** A running sandbox's actual addresses, from its sandbox.json. */
async function runningSandboxChecks(running: RunningSandbox, owners: Owners): Promise<AddressCheck[]> {
  return [
    running.mcpUrl === 'stdio' ? check('mcp.listen', 'skipped', 'MCP over stdio') : await checkAddress('mcp.listen', hostPortOf(running.mcpUrl), owners.manager, MOVE.mcp),
    await checkAddress('sandbox edge', hostPortOf(running.edgeUrl), owners.manager, MOVE.edge),
    running.metricsUrl ? await checkAddress('metrics.listen', hostPortOf(running.metricsUrl), owners.manager, MOVE.metrics) : check('metrics.listen', 'skipped', 'off'),
  ];
}

/** The addresses `serve` will take in the sandbox (those with port 0 are chosen when it starts). */
async function plannedSandboxChecks(config: Config, owners: Owners, options: AddressOptions): Promise<AddressCheck[]> {
  const mcp = options.listen ?? config.mcp.listen;
  const edge = options.edgeListen ?? DEFAULT_EDGE_LISTEN;
  const metrics = config.metrics.listen;
  return [
    portOf(mcp) === 0 ? chosenAtStart('mcp.listen', 'MCP') : await checkAddress('mcp.listen', mcp, owners.manager, MOVE.mcp),
    portOf(edge) === 0 ? chosenAtStart('sandbox edge', 'the sandbox edge') : await checkAddress('sandbox edge', edge, owners.manager, MOVE.edge),
    metrics === 'off'
      ? check('metrics.listen', 'skipped', 'off')
      : metrics === DEFAULT_METRICS_LISTEN || portOf(metrics) === 0
        ? chosenAtStart('metrics.listen', "the sandbox's metrics and health")
        : await checkAddress('metrics.listen', metrics, owners.manager, MOVE.metrics),
  ];
}

export async function checkAddresses(config: Config, pidfile: string, options: AddressOptions = {}): Promise<AddressCheck[]> {
  const manager = managerOf(config, pidfile);
  const cloudflared = cloudflaredOf(config);
  const owners: Owners = {
    manager: manager ? [{ pid: manager.pid, what: 'this manager' }] : [],
    cloudflared: cloudflared ? [{ pid: cloudflared.pid, what: "cloudflared, started by this data directory's manager" }] : [],
  };
  if (config.cloudflare.apiBaseUrl) return productionAddresses(config, owners, options);
  // The sandbox: a running manager's actual addresses are in sandbox.json; otherwise those serve will use.
  const info = manager ? RunningSandbox.safeParse(readJson(join(config.dataDir, 'sandbox.json'))) : null;
  const running = info?.success === true && info.data.pid === manager?.pid ? info.data : null;
  const cloudflaredChecks = await sandboxCloudflaredChecks(config, cloudflared, owners);
  return [...cloudflaredChecks, ...(running ? await runningSandboxChecks(running, owners) : await plannedSandboxChecks(config, owners, options))];
}
