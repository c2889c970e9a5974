import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { startCloudflareEmulator, type CloudflareEmulator } from '../../sandbox/cloudflare-emulator/index.ts';
import { emulatorTunnelDirectory } from '../../sandbox/cloudflare-emulator/tunnel-directory.ts';
import { startSandboxEdge, type SandboxEdge } from '../../sandbox/edge/edge.ts';
import { splitHostPort } from '../../host-port.ts';
import { startSeedServices } from '../../sandbox/seed-services.ts';
import { TrafficLog } from '../../sandbox/traffic-log.ts';
import { generateToken } from '../../secrets/token.ts';
import type { Config } from './config.ts';
import { chooseSandboxCloudflared, type SandboxCloudflared } from './sandbox-cloudflared.ts';

/**
 * The embedded default: with no Cloudflare API configured, the service runs against a local Cloudflare API
 * emulator (seeded with the seed's zones and records) and a local edge that cloudflared registers with (the real
 * cloudflared when one is installed, the stand-in otherwise: sandbox-cloudflared.ts), so the whole journey works on
 * one machine with no account.
 */
export interface SandboxEnvironment {
  apiBaseUrl: string;
  apiToken: string;
  edgeUrl: string;
  edge: SandboxEdge;
  /** The cloudflared the sandbox runs, and the flags that point it at the sandbox edge. */
  cloudflared: SandboxCloudflared & { flags: string[] };
  /** The emulator itself (its admin side sets faults for tests and benchmarks). */
  emulator: CloudflareEmulator;
  /** Demo MCP tokens, project → token (kept across restarts in sandbox.json). */
  tokens: Record<string, string>;
  /** Environment for cloudflared (the stand-in finds the edge through it). */
  cloudflaredEnv: NodeJS.ProcessEnv;
  /**
   * The stand-in's two metrics addresses (live and replica), when the sandbox chose them: free ports, so two
   * sandboxes on one machine never share one. Undefined when the configuration names its own.
   */
  metricsAddresses?: string[];
  sandboxFile: string;
  close(): Promise<void>;
}

export interface SandboxFile {
  mcpUrl: string;
  edgeUrl: string;
  cloudflareApiUrl: string;
  cloudflareApiToken: string;
  accountId: string;
  tunnelId: string;
  configPath: string;
  databasePath: string;
  tokens: Record<string, string>;
  /** Which cloudflared runs the tunnel: the real one (found by cloudflared.command, TM_CLOUDFLARED or PATH) or the stand-in. */
  cloudflared: { kind: 'real' | 'standin'; version: string; command: string[]; chosenBy: SandboxCloudflared['chosenBy'] };
  /** Where the real cloudflared connects to the sandbox edge (TLS), and the CA it trusts for it. */
  edgeTunnelAddress: string | null;
  edgeCaPath: string | null;
  /** The manager's Prometheus metrics and its health check (absent with metrics.listen: off). */
  metricsUrl?: string;
  healthUrl?: string;
  startedAt: string;
  pid: number;
}

export const DEFAULT_EDGE_LISTEN = '127.0.0.1:8790';
/** cloudflared's own default metrics address, which is also ours outside the sandbox. */
export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:20241';

async function freePort(wanted = 0, host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(wanted, host, () => resolve());
  });
  const address: AddressInfo | string | null = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error(`no TCP port was bound on ${host} (${String(address)})`);
  return address.port;
}

/**
 * In the sandbox every port follows "0 = a free one": cloudflared's metrics too (the live one and the replicas' two),
 * unless the configuration names an address of its own. The ports chosen are kept in the data directory, so the next
 * start finds (and adopts) a cloudflared that survived a crash of the manager on the same addresses; a file kept by an
 * earlier version with fewer addresses is completed, not replaced.
 */
const SANDBOX_METRICS_ADDRESSES = 3;

async function sandboxMetricsAddresses(config: Config, sandboxDir: string): Promise<string[] | undefined> {
  const configured = config.cloudflared.metricsAddress;
  if (configured !== DEFAULT_METRICS_ADDRESS && !configured.endsWith(':0')) return undefined;
  const file = join(sandboxDir, 'metrics-addresses.json');
  let kept: string[] = [];
  try {
    const parsed: unknown = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : [];
    if (Array.isArray(parsed) && parsed.every((address) => typeof address === 'string')) kept = parsed;
  } catch {
    // unreadable: choose again
  }
  if (kept.length >= SANDBOX_METRICS_ADDRESSES) return kept.slice(0, SANDBOX_METRICS_ADDRESSES);
  const chosen = [...kept];
  while (chosen.length < SANDBOX_METRICS_ADDRESSES) chosen.push(`127.0.0.1:${await freePort()}`);
  writeFileSync(file, `${JSON.stringify(chosen)}\n`);
  return chosen;
}

/**
 * Where the real cloudflared reaches the edge: the public listener's host (127.0.0.1 unless --edge-listen says
 * otherwise, e.g. a Docker network's gateway for a cloudflared in a container) and a free port chosen once and kept in
 * the data directory, so a cloudflared that outlived the manager (spawn driver) finds the edge again at the next start,
 * and is adopted (its command line, which names the address, is unchanged). A port taken meanwhile is replaced.
 */
async function edgeTunnelListen(sandboxDir: string, publicListen: string): Promise<string> {
  const host = splitHostPort(publicListen).host;
  const file = join(sandboxDir, 'edge-tunnel-address');
  const kept = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (kept.startsWith(`${host}:`)) {
    try {
      await freePort(Number(kept.slice(kept.lastIndexOf(':') + 1)), host);
      return kept;
    } catch {
      // taken by another program meanwhile: choose again
    }
  }
  const chosen = `${host}:${await freePort(0, host)}`;
  writeFileSync(file, `${chosen}\n`);
  return chosen;
}

/**
 * The tunnel's credentials file, as `cloudflared tunnel create` writes it (0600), from the emulator's tunnel: the
 * real cloudflared presents its secret when it registers.
 */
function writeTunnelCredentials(sandboxDir: string, emulator: CloudflareEmulator, tunnelId: string): string {
  const path = join(sandboxDir, 'tunnel-credentials.json');
  const tunnel = emulator.tunnel(tunnelId);
  const content = {
    AccountTag: tunnel?.accountId ?? emulator.accountId,
    TunnelSecret: tunnel?.secret ?? Buffer.alloc(32).toString('base64'),
    TunnelID: tunnelId,
    Endpoint: '',
  };
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(content)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
  return path;
}

/** The flags that point the real cloudflared at the sandbox edge: one `--edge` per connection, its CA, HTTP/2. */
function realCloudflaredFlags(config: Config, edge: SandboxEdge, credentialsFile: string): string[] {
  const address = edge.tunnelAddress;
  const caPath = edge.caPath;
  if (address === null || caPath === null) throw new Error('the sandbox edge has no TLS tunnel address: it was started without the real cloudflared in mind');
  return [
    ...Array.from({ length: config.cloudflared.expectedConnections }, () => ['--edge', address]).flat(),
    '--cacert',
    caPath,
    '--protocol',
    'http2',
    '--credentials-file',
    credentialsFile,
  ];
}

function previousTokens(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    const tokens: unknown = typeof parsed === 'object' && parsed !== null && 'tokens' in parsed ? parsed.tokens : undefined;
    if (typeof tokens !== 'object' || tokens === null) return {};
    return Object.fromEntries(Object.entries(tokens).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  } catch {
    return {};
  }
}

/**
 * The sandbox's Cloudflare API emulator alone, on the account state kept in the data directory (what `serve` and an
 * offline command such as `recover` both see).
 */
export async function startSandboxEmulator(config: Config, traffic?: TrafficLog): Promise<CloudflareEmulator> {
  const sandboxDir = join(config.dataDir, 'sandbox');
  mkdirSync(sandboxDir, { recursive: true });
  return startCloudflareEmulator({ host: '127.0.0.1', port: 0, statePath: join(sandboxDir, 'cloudflare.json'), ...(traffic ? { traffic } : {}) });
}

export async function startSandboxEnvironment(config: Config, options: { edgeListen?: string; logger?: Logger } = {}): Promise<SandboxEnvironment> {
  const sandboxDir = join(config.dataDir, 'sandbox');
  const cloudflared = chooseSandboxCloudflared(config);
  // What the edge carries, the emulator's GraphQL Analytics answers (kept in memory only: a restart starts afresh).
  const traffic = new TrafficLog();
  const emulator = await startSandboxEmulator(config, traffic);
  const edgeListen = options.edgeListen ?? DEFAULT_EDGE_LISTEN;
  const edge = await startSandboxEdge({
    listen: edgeListen,
    tunnelListen: await edgeTunnelListen(sandboxDir, edgeListen),
    caDir: sandboxDir,
    tunnels: emulatorTunnelDirectory(emulator),
    traffic,
  });
  // The routes that predate the manager, as on the VM: their hand-written rules and services (src/sandbox/seed-services.ts).
  const seed = await startSeedServices({ stateDir: sandboxDir, configPath: config.cloudflared.configPath, tunnelId: config.tunnel.id, ...(options.logger ? { logger: options.logger } : {}) });
  const sandboxFile = join(config.dataDir, 'sandbox.json');
  const kept = previousTokens(sandboxFile);
  const tokens: Record<string, string> = {};
  for (const project of config.projects) {
    // A project with its own configured token hash keeps it; demo projects get a token we can print.
    if (!project.tokenHash) tokens[project.name] = kept[project.name] ?? generateToken();
  }
  const metricsAddresses = await sandboxMetricsAddresses(config, sandboxDir);
  // Written whatever runs here: a real cloudflared in a container (docker driver) reads it through a mount.
  const credentialsFile = writeTunnelCredentials(sandboxDir, emulator, config.tunnel.id);
  const flags = cloudflared.kind === 'real' ? realCloudflaredFlags(config, edge, credentialsFile) : [];
  options.logger?.info(
    { cloudflareApi: emulator.apiBaseUrl, edge: edge.address, edgeTunnel: edge.tunnelAddress, metricsAddresses, cloudflared: { kind: cloudflared.kind, version: cloudflared.version, command: cloudflared.command } },
    `sandbox: Cloudflare API emulator and local edge started; cloudflared is ${cloudflared.kind === 'real' ? `the real one, ${cloudflared.version}` : 'the stand-in'}`,
  );
  return {
    apiBaseUrl: emulator.apiBaseUrl,
    apiToken: emulator.token,
    edgeUrl: `http://${edge.address}`,
    edge,
    cloudflared: { ...cloudflared, flags },
    emulator,
    tokens,
    cloudflaredEnv: { ...process.env, TM_STANDIN_EDGE: edge.address },
    ...(metricsAddresses ? { metricsAddresses } : {}),
    sandboxFile,
    async close() {
      await edge.close();
      await emulator.close();
      await seed?.close();
    },
  };
}

/**
 * Writes `<dataDir>/sandbox.json` (mode 0600: it holds the demo tokens), atomically: written beside it, then renamed
 * over it, so a reader (the CLI, a test, an agent) never sees half a file.
 */
export function writeSandboxFile(path: string, content: SandboxFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/** What the sandbox tells its user (URLs, the demo tokens), written to `<dataDir>/sandbox.json` and answered. */
export function writeSandboxInfo(sandbox: SandboxEnvironment, config: Config, mcpUrl: string | null, healthUrl: string | null): SandboxFile {
  const info: SandboxFile = {
    mcpUrl: mcpUrl ?? 'stdio',
    edgeUrl: sandbox.edgeUrl,
    cloudflareApiUrl: sandbox.apiBaseUrl,
    cloudflareApiToken: sandbox.apiToken,
    accountId: config.cloudflare.accountId,
    tunnelId: config.tunnel.id,
    configPath: config.cloudflared.configPath,
    databasePath: config.databasePath,
    tokens: sandbox.tokens,
    cloudflared: { kind: sandbox.cloudflared.kind, version: sandbox.cloudflared.version, command: sandbox.cloudflared.command, chosenBy: sandbox.cloudflared.chosenBy },
    edgeTunnelAddress: sandbox.edge.tunnelAddress,
    edgeCaPath: sandbox.edge.caPath,
    ...(healthUrl ? { metricsUrl: `${healthUrl}/metrics`, healthUrl: `${healthUrl}/healthz` } : {}),
    startedAt: new Date().toISOString(),
    pid: process.pid,
  };
  writeSandboxFile(sandbox.sandboxFile, info);
  return info;
}
