/**
 * What the budget benchmarks share: percentiles, the machine line, writing one section of
 * docs/performance.md, a `tunnel-manager serve` process on a temp data directory, /proc readers, a raw MCP
 * client over fetch (no client-side schema validation, so a latency is the server's plus the loopback's),
 * and seeding the route ledger through RoutesRepository.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase, type Database } from '../../src/store/database.ts';
import { DomainsRepository } from '../../src/store/domains-repository.ts';
import { RoutesRepository } from '../../src/store/routes-repository.ts';
import { startCli, waitUntil } from '../helpers/cli.ts';
import { stopLeftovers } from '../helpers/leftover-processes.ts';
import { freePort } from '../helpers/standin-cloudflared.ts';
import { generateToken, hashToken } from '../../src/secrets/token.ts';

export interface Spread {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** Nearest-rank percentiles. */
export function spreadOf(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
  const mean = sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length);
  return { n: sorted.length, min: round(sorted[0] ?? 0), p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(sorted[sorted.length - 1] ?? 0), mean: round(mean) };
}

export function machineLine(): string {
  const load = os.loadavg().map((value) => value.toFixed(1)).join(' / ');
  return `Measured on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Linux ${os.release()}; load average at the end ${load} (1 / 5 / 15 min).`;
}

export const verdict = (pass: boolean): string => (pass ? '**pass**' : '**FAIL**');

export const PERFORMANCE_DOC = fileURLToPath(new URL('../../docs/performance.md', import.meta.url));

/** Replaces the `## title` section of docs/performance.md (or appends it), leaving the other sections alone. */
export function writeDocSection(title: string, body: string): string {
  const heading = `## ${title}`;
  const section = `${heading}\n\n${body.trim()}\n`;
  const current = existsSync(PERFORMANCE_DOC) ? readFileSync(PERFORMANCE_DOC, 'utf8') : '# Performance\n\n';
  const start = current.indexOf(`${heading}\n`);
  let next: string;
  if (start === -1) {
    next = `${current.trimEnd()}\n\n${section}`;
  } else {
    const after = current.indexOf('\n## ', start + 1);
    next = `${current.slice(0, start)}${section}${after === -1 ? '' : `\n${current.slice(after + 1)}`}`;
  }
  writeFileSync(PERFORMANCE_DOC, next.endsWith('\n') ? next : `${next}\n`);
  return PERFORMANCE_DOC;
}

// ── /proc ─────────────────────────────────────────────────────────────────────

export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

export interface Memory {
  rssMb: number;
  rssAnonMb: number;
  rssFileMb: number;
  hwmMb: number;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: round(kb('VmRSS') / 1024, 1), rssAnonMb: round(kb('RssAnon') / 1024, 1), rssFileMb: round(kb('RssFile') / 1024, 1), hwmMb: round(kb('VmHWM') / 1024, 1) };
}

/** Direct children of a process (from /proc/<pid>/task/<pid>/children). */
export function childrenOf(pid: number): { pid: number; command: string }[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    if (text === '') return [];
    return text.split(/\s+/).map((child) => {
      const childPid = Number(child);
      const command = readFileSync(`/proc/${childPid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      return { pid: childPid, command };
    });
  } catch {
    return [];
  }
}

// ── a real `serve` process ────────────────────────────────────────────────────

export interface SandboxInfo {
  mcpUrl: string;
  edgeUrl: string;
  cloudflareApiUrl: string;
  databasePath: string;
  configPath: string;
  tokens: Record<string, string>;
  pid: number;
  /** The manager's /metrics (sandbox.json has it when metrics are served). */
  metricsUrl?: string;
}

export interface ServeProcess {
  pid: number;
  dataDir: string;
  info: SandboxInfo;
  output: () => string;
  /** SIGTERM to this process (by pid) and wait for its exit; it stops its stand-in cloudflared. */
  stop: () => Promise<void>;
}

/** Writes a configuration file for the serve process: its own metrics port (parallel runs must not collide). */
export async function writeServeConfig(dir: string, extra: string[] = [], cloudflared: string[] = ['  metricsAddress: 127.0.0.1:0']): Promise<string> {
  const path = join(dir, 'bench-config.yml');
  // configPath too: it must stay inside this benchmark's directory, whatever --data-dir says.
  // No per-project limits: a benchmark makes many calls a minute and seeds hundreds of routes per project; the limits
  // have their own test.
  writeFileSync(path, [`cloudflared:`, `  configPath: ${join(dir, 'cloudflared', 'config.yml')}`, ...cloudflared, 'limits:', '  toolCallsPerMinute: 0', '  routesPerProject: 0', ...extra, ''].join('\n'));
  return path;
}

/**
 * What `serve` needs to run in production mode instead of the sandbox: where it serves and the project tokens (the
 * sandbox would say both in sandbox.json), and the environment with the Cloudflare token. See startProductionSetup.
 */
export interface ProductionServe {
  mcpUrl: string;
  metricsUrl: string;
  tokens: Record<string, string>;
  env: NodeJS.ProcessEnv;
}

/**
 * `tunnel-manager serve` (bin → dist/cli.js, on this Node or `node`) on `dataDir`; resolves once the tunnel runs and,
 * in the sandbox, sandbox.json names it (in production mode, `production` says where it serves).
 */
export async function startServe(dataDir: string, configPath: string, node?: string, env: NodeJS.ProcessEnv = {}, production?: ProductionServe): Promise<ServeProcess> {
  const sandboxFile = join(dataDir, 'sandbox.json');
  rmSync(sandboxFile, { force: true });
  const args = ['serve', '--config', configPath, '--data-dir', dataDir, ...(production ? [] : ['--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0'])];
  const cli = startCli(args, { env: { ...env, ...production?.env }, ...(node === undefined ? {} : { node }) });
  const pid = cli.child.pid as number;
  let exited = false;
  void cli.exited.then(() => (exited = true));
  const stop = async (): Promise<void> => {
    if (!exited) process.kill(pid, 'SIGTERM');
    await cli.exited;
  };
  try {
    return { pid, dataDir, info: await serveReady(), output: cli.output, stop };
  } catch (error) {
    // A serve that never got ready is stopped, not left running after the benchmark (with its cloudflared).
    await stop();
    throw error;
  }

  async function serveReady(): Promise<SandboxInfo> {
    const info = await waitUntil(
      () => {
        if (exited) throw new Error(`serve exited early:\n${cli.output().slice(-3000)}`);
        if (production) {
          if (!cli.output().includes('"msg":"MCP server listening"')) return undefined;
          const info: SandboxInfo = { mcpUrl: production.mcpUrl, edgeUrl: '', cloudflareApiUrl: '', databasePath: join(dataDir, 'tunnel-manager.db'), configPath: '', tokens: production.tokens, pid, metricsUrl: production.metricsUrl };
          return info;
        }
        if (!existsSync(sandboxFile)) return undefined;
        const parsed = JSON.parse(readFileSync(sandboxFile, 'utf8')) as SandboxInfo;
        return parsed.pid === pid ? parsed : undefined;
      },
      60_000,
      production ? 'serve to start' : 'serve to write sandbox.json',
    );
    // The spawn driver's cloudflared outlives a manager in production mode: a second boot adopts it.
    await waitUntil(() => /"msg":"(started|adopted running) cloudflared"/.test(cli.output()) || undefined, 60_000, 'serve to start cloudflared');
    return info;
  }
}

export function tempDataDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(os.tmpdir(), `tm-bench-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

// ── a raw MCP client ──────────────────────────────────────────────────────────

/**
 * JSON-RPC over Streamable HTTP with fetch (keep-alive): initialize once, then `callTool`. The answer may
 * come as JSON or as one SSE message; either is parsed. No output-schema validation on this side, so the
 * time is the server's work plus the loopback round trip.
 */
export class RawMcpClient {
  private sessionId: string | null = null;
  private nextId = 1;

  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  private async post(body: unknown): Promise<{ status: number; message: Record<string, unknown> | null }> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...(this.sessionId ? { 'mcp-session-id': this.sessionId, 'mcp-protocol-version': '2025-06-18' } : {}),
      },
      body: JSON.stringify(body),
    });
    const session = response.headers.get('mcp-session-id');
    if (session) this.sessionId = session;
    const text = await response.text();
    if (text.trim() === '') return { status: response.status, message: null };
    if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      const data = text
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .find((line) => line.startsWith('{') && line.includes('"id"'));
      return { status: response.status, message: data === undefined ? null : (JSON.parse(data) as Record<string, unknown>) };
    }
    return { status: response.status, message: JSON.parse(text) as Record<string, unknown> };
  }

  async initialize(): Promise<void> {
    const { status } = await this.post({
      jsonrpc: '2.0',
      id: this.nextId++,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'tunnel-manager-bench', version: '1.0.0' } },
    });
    if (status !== 200 || this.sessionId === null) throw new Error(`initialize failed with HTTP ${status}`);
    await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  /** Calls a tool; returns its structured content, and throws if the tool answered an error. */
  async callTool(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const { status, message } = await this.post({ jsonrpc: '2.0', id: this.nextId++, method: 'tools/call', params: { name, arguments: args } });
    const result = message?.result as { isError?: boolean; structuredContent?: Record<string, unknown> } | undefined;
    if (status !== 200 || !result || result.isError) throw new Error(`${name} failed (HTTP ${status}): ${JSON.stringify(message).slice(0, 500)}`);
    return result.structuredContent ?? {};
  }
}

// ── the ledger ────────────────────────────────────────────────────────────────

export const PS_PROJECTS = [
  { name: 'consilio', from: 3100 },
  { name: 'openhorizon', from: 3200 },
  { name: 'odin', from: 3300 },
  { name: 'health-agent', from: 3400 },
] as const;

/**
 * Inserts `count` active routes into the ledger through RoutesRepository (spread over the four project
 * supervisors, on the default zone), as finished sagas would have left them. Returns the hostnames.
 */
export function seedRoutes(db: Database, count: number, zoneName = '153.se'): string[] {
  const zone = new DomainsRepository(db).findByName(zoneName);
  if (!zone) throw new Error(`zone ${zoneName} is not in the domains table yet (the service refreshes the zones at start)`);
  const routes = new RoutesRepository(db);
  const hostnames: string[] = [];
  const at = Date.now();
  db.transaction(() => {
    for (let i = 0; i < count; i += 1) {
      const project = PS_PROJECTS[i % PS_PROJECTS.length]!;
      const port = project.from + (i % 100);
      const hostname = `bench-${String(i).padStart(4, '0')}.${zone.name}`;
      routes.insert({
        hostname,
        zoneId: zone.zoneId,
        zoneName: zone.name,
        project: project.name,
        targetPort: port,
        service: `http://localhost:${port}`,
        targetReason: 'cloudflared runs on the host and the service listens on a host port: localhost reaches it',
        path: null,
        originRequest: null,
        dnsRecordId: `bench${String(i).padStart(28, '0')}`,
        dnsCreated: true,
        status: 'active',
        source: 'request',
        expiresAt: null,
        requestId: null,
        at,
      });
      hostnames.push(hostname);
    }
  })();
  return hostnames;
}

/**
 * A first `serve` on `dataDir` that refreshes the zones, then `count` routes seeded into its ledger (seedRoutes), then
 * stopped: the next serve on the directory boots with them.
 */
export async function seedLedgerThroughFirstBoot(dataDir: string, configPath: string, count: number, node?: string, env: NodeJS.ProcessEnv = {}, production?: ProductionServe): Promise<void> {
  const first = await startServe(dataDir, configPath, node, env, production);
  const { db } = openDatabase(first.info.databasePath);
  try {
    await waitUntil(() => new DomainsRepository(db).findByName('153.se') ?? undefined, 30_000, 'the zones to be refreshed');
    seedRoutes(db, count);
  } finally {
    db.close();
    await first.stop();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** True when this module file is the script node was asked to run. */
export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(metaUrl) === process.argv[1];
}

/**
 * Production mode as on a VM, for figures of the manager alone: the Cloudflare API emulator as a process of its own
 * (dist/cloudflare-emulator.js; in the sandbox it runs inside the manager, with the edge and the seed services), the
 * API token from the environment, a token per project through `tokenHash`, MCP and metrics on ports the OS had free,
 * the stand-in cloudflared with no edge. Returns the configuration file (written into `dir`) and what startServe needs.
 */
export async function startProductionSetup(dir: string, extra: string[] = []): Promise<{ configPath: string; production: ProductionServe; stop: () => Promise<void> }> {
  const apiToken = generateToken();
  const emulatorScript = fileURLToPath(new URL('../../dist/cloudflare-emulator.js', import.meta.url));
  const emulator = spawn(process.execPath, [emulatorScript, '--port', '0', '--token', apiToken, '--state', join(dir, 'cloudflare.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = await new Promise<{ apiBaseUrl: string; accountId: string; tunnelId: string }>((resolve, reject) => {
    let text = '';
    emulator.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const line = text.split('\n').find((l) => l.includes('"apiBaseUrl"'));
      if (line !== undefined) resolve(JSON.parse(line) as { apiBaseUrl: string; accountId: string; tunnelId: string });
    });
    emulator.once('exit', (code) => reject(new Error(`the emulator exited (${code}) before it listened: ${text}`)));
  });
  const standin = fileURLToPath(new URL('../../dist/standin-cloudflared.js', import.meta.url));
  const [mcpPort, metricsPort, cloudflaredPort] = [await freePort(), await freePort(), await freePort()];
  const projects = [{ name: 'meta-supervisor', role: 'ms', ports: '3000-3099' }, ...PS_PROJECTS.map((p) => ({ name: p.name, role: 'ps', ports: `${p.from}-${p.from + 99}` }))];
  const tokens = Object.fromEntries(projects.map((p) => [p.name, generateToken()]));
  const configPath = await writeServeConfig(dir, [
    'cloudflare:',
    `  apiBaseUrl: ${started.apiBaseUrl}`,
    `  accountId: ${started.accountId}`,
    'tunnel:',
    `  id: ${started.tunnelId}`,
    '  defaultZone: 153.se',
    'mcp:',
    `  listen: 127.0.0.1:${mcpPort}`,
    'metrics:',
    `  listen: 127.0.0.1:${metricsPort}`,
    'projects:',
    ...projects.map((p) => `  - { name: ${p.name}, role: ${p.role}, ports: ${p.ports}, tokenHash: "${hashToken(tokens[p.name]!)}" }`),
    ...extra,
  ], [`  metricsAddress: 127.0.0.1:${cloudflaredPort}`, `  command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(standin)}]`]);
  return {
    configPath,
    production: { mcpUrl: `http://127.0.0.1:${mcpPort}/mcp`, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, tokens, env: { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: apiToken } },
    // cloudflared (detached, outliving the manager in production mode) and the emulator: by pidfile and command line.
    stop: async () => void (await stopLeftovers(dir)),
  };
}
