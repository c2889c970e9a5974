import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { startCloudflareEmulator, type CloudflareEmulator } from '../sandbox/cloudflare-emulator/index.ts';
import { startStandinEdge, type StandinEdge } from '../sandbox/standin-cloudflared/edge.ts';
import { generateToken } from '../mcp/token.ts';
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
  startedAt: string;
  pid: number;
}

export const DEFAULT_EDGE_LISTEN = '127.0.0.1:8790';

function previousTokens(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as Partial<SandboxFile>).tokens ?? {};
  } catch {
    return {};
  }
}

export async function startSandboxEnvironment(config: Config, options: { edgeListen?: string; logger?: Logger } = {}): Promise<SandboxEnvironment> {
  const sandboxDir = join(config.dataDir, 'sandbox');
  mkdirSync(sandboxDir, { recursive: true });
  const emulator = await startCloudflareEmulator({ host: '127.0.0.1', port: 0, statePath: join(sandboxDir, 'cloudflare.json') });
  const edge = await startStandinEdge({ listen: options.edgeListen ?? DEFAULT_EDGE_LISTEN });
  const sandboxFile = join(config.dataDir, 'sandbox.json');
  const kept = previousTokens(sandboxFile);
  const tokens: Record<string, string> = {};
  for (const project of config.projects) {
    // A project with its own configured token hash keeps it; demo projects get a token we can print.
    if (!project.tokenHash) tokens[project.name] = kept[project.name] ?? generateToken();
  }
  options.logger?.info({ cloudflareApi: emulator.apiBaseUrl, edge: edge.address }, 'sandbox: Cloudflare API emulator and local edge started');
  return {
    apiBaseUrl: emulator.apiBaseUrl,
    apiToken: emulator.token,
    edgeUrl: `http://${edge.address}`,
    edge,
    emulator,
    tokens,
    cloudflaredEnv: { ...process.env, TM_STANDIN_EDGE: edge.address },
    sandboxFile,
    async close() {
      await edge.close();
      await emulator.close();
    },
  };
}

/** Writes `<dataDir>/sandbox.json` (mode 0600: it holds the demo tokens). */
export function writeSandboxFile(path: string, content: SandboxFile): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}
