import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { startCloudflareEmulator, type CloudflareEmulator } from '../sandbox/cloudflare-emulator/index.ts';
import { startStandinEdge, type StandinEdge } from '../sandbox/standin-cloudflared/edge.ts';
import { startSeedServices } from '../sandbox/seed-services.ts';
import { generateToken } from '../secrets/token.ts';
import type { Config } from './config.ts';

/**
 * The embedded default: with no Cloudflare API configured, the service runs against a local Cloudflare API
 * emulator (seeded with the seed's zones and records) and a local edge that the stand-in cloudflared registers
 * with, so the whole journey works on one machine with no account.
 */
export interface SandboxEnvironment {
  apiBaseUrl: string;
  apiToken: string;
  edgeUrl: string;
  edge: StandinEdge;
  /** The emulator itself (its admin side sets faults for tests and benchmarks). */
  emulator: CloudflareEmulator;
  /** Demo MCP tokens, project → token (kept across restarts in sandbox.json). */
  tokens: Record<string, string>;
  /** Environment for the stand-in cloudflared: where the edge is. */
  cloudflaredEnv: NodeJS.ProcessEnv;
  /**
   * The stand-in's two metrics addresses (live and replica), when the sandbox chose them: free ports, so two
   * sandboxes on one machine never share one. Undefined when the configuration names its own.
   */
  metricsAddresses?: [string, string];
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
  /** The manager's Prometheus metrics and its health check (absent with metrics.listen: off). */
  metricsUrl?: string;
  healthUrl?: string;
  startedAt: string;
  pid: number;
}

export const DEFAULT_EDGE_LISTEN = '127.0.0.1:8790';
/** cloudflared's own default metrics address, which is also ours outside the sandbox. */
export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:20241';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * In the sandbox every port follows "0 = a free one": cloudflared's metrics too, unless the configuration names an
 * address of its own. The ports chosen are kept in the data directory, so the next start finds (and adopts) a
 * stand-in that survived a crash of the manager on the same addresses.
 */
async function sandboxMetricsAddresses(config: Config, sandboxDir: string): Promise<[string, string] | undefined> {
  const configured = config.cloudflared.metricsAddress;
  if (configured !== DEFAULT_METRICS_ADDRESS && !configured.endsWith(':0')) return undefined;
  const file = join(sandboxDir, 'metrics-addresses.json');
  if (existsSync(file)) {
    try {
      const kept = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (Array.isArray(kept) && kept.length === 2 && kept.every((address) => typeof address === 'string')) return kept as [string, string];
    } catch {
      // unreadable: choose again
    }
  }
  const chosen: [string, string] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  writeFileSync(file, `${JSON.stringify(chosen)}\n`);
  return chosen;
}

function previousTokens(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as Partial<SandboxFile>).tokens ?? {};
  } catch {
    return {};
  }
}

/**
 * The sandbox's Cloudflare API emulator alone, on the account state kept in the data directory (what `serve` and an
 * offline command such as `recover` both see).
 */
export async function startSandboxEmulator(config: Config): Promise<CloudflareEmulator> {
  const sandboxDir = join(config.dataDir, 'sandbox');
  mkdirSync(sandboxDir, { recursive: true });
  return startCloudflareEmulator({ host: '127.0.0.1', port: 0, statePath: join(sandboxDir, 'cloudflare.json') });
}

export async function startSandboxEnvironment(config: Config, options: { edgeListen?: string; logger?: Logger } = {}): Promise<SandboxEnvironment> {
  const sandboxDir = join(config.dataDir, 'sandbox');
  const emulator = await startSandboxEmulator(config);
  const edge = await startStandinEdge({ listen: options.edgeListen ?? DEFAULT_EDGE_LISTEN });
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
  options.logger?.info({ cloudflareApi: emulator.apiBaseUrl, edge: edge.address, metricsAddresses }, 'sandbox: Cloudflare API emulator and local edge started');
  return {
    apiBaseUrl: emulator.apiBaseUrl,
    apiToken: emulator.token,
    edgeUrl: `http://${edge.address}`,
    edge,
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
    ...(healthUrl ? { metricsUrl: `${healthUrl}/metrics`, healthUrl: `${healthUrl}/healthz` } : {}),
    startedAt: new Date().toISOString(),
    pid: process.pid,
  };
  writeSandboxFile(sandbox.sandboxFile, info);
  return info;
}
