import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parseConfig, type Config } from '../../src/app/config/config.ts';
import { createLogger } from '../../src/app/config/logger.ts';
import { STANDIN_COMMAND } from './standin-cloudflared.ts';
import { startTunnelManager as startService, type TunnelManager as Service, type TunnelManagerOptions as ServiceOptions } from '../../src/root/composition-root.ts';
import type { EventRow } from '../../src/store/events-repository.ts';

/**
 * The whole service in this process, in sandbox mode, on a fresh data directory: real SQLite, the Cloudflare
 * API emulator and the local edge on 127.0.0.1, the stand-in cloudflared as a real process, MCP over real HTTP.
 */
export async function startTestService(
  overrides: Record<string, unknown> = {},
  /** Extra startService options, e.g. a short `tunnelReadyTimeoutMs`. */
  serviceOptions: Partial<Omit<ServiceOptions, 'logger'>> = {},
): Promise<{ service: Service; config: Config; dataDir: string; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tm-service-'));
  const config = parseConfig(
    {
      dataDir,
      // The embedded projects, each with a port range of this service's own (see reservedProjects).
      ...(overrides.projects === undefined ? { projects: await reservedProjects() } : {}),
      // Port 0: the sandbox picks two free ports (live and replica), so test files running in parallel never share one.
      // The stand-in, whatever cloudflared this machine has: the tests of the real one say so (test/helpers/real-cloudflared.ts).
      cloudflared: { metricsAddress: '127.0.0.1:0', command: STANDIN_COMMAND },
      health: { probeIntervalSeconds: 1 },
      restart: { startTimeoutSeconds: 20, stopGraceSeconds: 5 },
      reload: { drainGraceSeconds: 2 },
      // Every test service shares one Docker engine: only the file about label routes turns them on, so another
      // file's labelled containers never become routes (or refusals) here.
      labels: { enabled: false },
      // The per-project limits have their own test file (test/e2e/limits.test.ts); elsewhere a test's own flood of
      // calls (property tests, matrices) is not what it is about.
      limits: { toolCallsPerMinute: 0 },
      ...overrides,
    },
    'test',
  );
  const service = await startService(config, {
    logger: createLogger({ level: process.env.TM_TEST_LOG ?? 'silent' }),
    mcpListen: '127.0.0.1:0',
    edgeListen: '127.0.0.1:0',
    ...serviceOptions,
  });
  await settled(service);
  return {
    service,
    config,
    dataDir,
    stop: async () => {
      await service.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until the boot work is done (zones refreshed and adopted, the boot-time ingress cycle finished, the tunnel
 * running), so a test's "before" picture of the world is not taken halfway through it.
 */
export async function settled(service: Service, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const boot = bootProgress(service);
    if (boot.done) return;
    // Say why the tunnel is not running (its last error, restarts), so a failure on a loaded CI machine is diagnosable.
    if (Date.now() > deadline) throw new Error(`the service did not settle: ${boot.describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How far the boot work is: zones refreshed, the ingress actor idle, the tunnel running. */
function bootProgress(service: Service): { done: boolean; describe(): string } {
  const children = service.supervisor.actor.getSnapshot().children;
  const zones = children.zones?.getSnapshot().value;
  const ingress = children.ingress?.getSnapshot().value;
  const tunnelSnapshot = children.tunnel?.getSnapshot();
  const tunnel = tunnelSnapshot?.value;
  const running = typeof tunnel === 'object' && tunnel !== null && 'running' in tunnel;
  return {
    done: zones === 'ready' && ingress === 'idle' && running,
    describe: () =>
      `zones ${JSON.stringify(zones)}, ingress ${JSON.stringify(ingress)}, tunnel ${JSON.stringify(tunnel)}` +
      ` (last error: ${tunnelSnapshot?.context.lastError ?? 'none'}, restarts: ${tunnelSnapshot?.context.restartCount ?? 0})`,
  };
}

export async function mcpClient(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'tunnel-manager-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return client;
}

/** The sandbox's demo projects a test talks to, each with its own MCP client (closed by the returned `close`). */
export async function sandboxClients(service: Service): Promise<{ consilio: Client; odin: Client; ms: Client; close: () => Promise<void> }> {
  const info = service.sandboxInfo;
  const token = (project: string): string => {
    const found = info?.tokens[project];
    if (found === undefined) throw new Error(`the sandbox has no token for ${project}`);
    return found;
  };
  const url = info?.mcpUrl ?? '';
  const [consilio, odin, ms] = await Promise.all([mcpClient(url, token('consilio')), mcpClient(url, token('odin')), mcpClient(url, token('meta-supervisor'))]);
  return { consilio, odin, ms, close: async () => void (await Promise.all([consilio.close(), odin.close(), ms.close()])) };
}

/** The structured result of a tool call (success or our error shape). */
export async function call<T = Record<string, unknown>>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<{ isError: boolean; data: T }> {
  const result = await client.callTool({ name, arguments: args });
  return { isError: result.isError === true, data: result.structuredContent as T };
}

/** A plain HTTP service on 127.0.0.1:port answering `hello from <name>`. */
export async function startOrigin(port: number, name: string): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello from ${name} (${req.headers.host})`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/**
 * startOrigin on a free port between `from` and `to` (a project's range): test files run in parallel, and each
 * runs its own service, so they must not all take the first port of a range on the host.
 */
export async function startOriginInRange(from: number, to: number, name: string): Promise<Server> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    try {
      return await startOrigin(port, name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
  throw new Error(`no free port between ${from} and ${to}`);
}

/**
 * A port of [from, to] that nothing listens on right now, for a test that publishes a container on it: test files
 * run in parallel, and each fresh service hands out the same first port of a range.
 */
export async function freePortInRange(from: number, to: number): Promise<number> {
  const probe = await startOriginInRange(from, to, 'probe');
  const port = portOf(probe);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/**
 * The embedded projects (names and roles as `npm start` has them) with port ranges of their own: one block of
 * `perProject` ports per project, drawn at random from 10000-19999 and free on 127.0.0.1 when drawn. A project's
 * "next free port" is then a port nothing else on the host uses: the embedded ranges (3000-3499, 9000-9999) are where
 * a person's own services, the README's walkthrough, or another copy of this suite listen, publish or keep containers
 * (the manager finds a container listening on a port inside its own network, so another suite's containers would be
 * candidates too). Ports from 20000 up are freePort()'s; Linux hands out 32768 and up for `listen(0)`.
 */
export async function reservedProjects(perProject = 50): Promise<{ name: string; role: string; ports: string }[]> {
  const embedded = parseConfig({}, 'embedded').projects;
  const size = embedded.length * perProject;
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 10_000 + Math.floor(Math.random() * Math.floor((10_000 - size) / perProject)) * perProject;
    if (!(await allFree(base, base + size - 1))) continue;
    return embedded.map((project, index) => ({ name: project.name, role: project.role, ports: `${base + index * perProject}-${base + (index + 1) * perProject - 1}` }));
  }
  throw new Error(`no block of ${size} free ports between 10000 and 19999 after 50 tries`);
}

async function allFree(from: number, to: number): Promise<boolean> {
  for (let port = from; port <= to; port += 1) {
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) return false;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return true;
}

/**
 * A project's port range in a service's configuration (or in reservedProjects()), [from, to]; `part` takes a slice of it, e.g. `[0.5, 1]` for
 * the upper half (so the ports a test picks never meet the ones `port_allocate` hands out first).
 */
export function projectPorts(
  config: { projects: readonly { name: string; ports: { from: number; to: number } | string }[] },
  project: string,
  part: [number, number] = [0, 1],
): [number, number] {
  const ports = config.projects.find((p) => p.name === project)?.ports;
  if (ports === undefined) throw new Error(`no project ${project} in this configuration`);
  const range = typeof ports === 'string' ? { from: Number(ports.split('-')[0]), to: Number(ports.split('-')[1]) } : ports;
  const span = range.to - range.from + 1;
  return [range.from + Math.floor(span * part[0]), range.from + Math.ceil(span * part[1]) - 1];
}

export function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** GET through the sandbox edge with a Host header, as a browser reaching https://hostname would. */
export async function viaEdge(edgeUrl: string, hostname: string, path = '/'): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  const url = new URL(path, edgeUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: hostname } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A fault file for the stand-in cloudflared (docs/cloudflared.md): its path is put in this process's environment,
 * which the service hands to every stand-in it spawns. `remove()` deletes it and unsets the variable.
 */
export function standinFaultFile(prefix: string): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const path = join(dir, 'standin-faults');
  process.env.TM_STANDIN_FAULT_FILE = path;
  return {
    path,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
      delete process.env.TM_STANDIN_FAULT_FILE;
    },
  };
}

/**
 * A service with consilio's and the meta-supervisor's clients, an origin answering on a free port of consilio's range
 * (its upper half, which port_allocate hands out last) allocated to consilio, and every event the service publishes
 * from then on. `stop()` ends it all.
 */
export async function startWithConsilioOrigin(options: {
  name: string;
  overrides?: Record<string, unknown>;
  serviceOptions?: Partial<Omit<ServiceOptions, 'logger'>>;
}): Promise<{
  env: Awaited<ReturnType<typeof startTestService>>;
  consilio: Client;
  ms: Client;
  port: number;
  events: EventRow[];
  stop: () => Promise<void>;
}> {
  const env = await startTestService(options.overrides ?? {}, options.serviceOptions ?? {});
  const info = env.service.sandboxInfo!;
  const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  const ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  const origin = await startOriginInRange(...projectPorts(env.config, 'consilio', [0.5, 1]), options.name);
  const port = portOf(origin);
  const allocated = await call(consilio, 'port_allocate', { port, purpose: options.name });
  if (allocated.isError) throw new Error(`port_allocate ${port}: ${JSON.stringify(allocated.data)}`);
  const events: EventRow[] = [];
  const unsubscribe = env.service.bus.subscribe((event) => events.push(event));
  return {
    env,
    consilio,
    ms,
    port,
    events,
    stop: async () => {
      unsubscribe();
      await Promise.all([consilio.close(), ms.close()]);
      origin.close();
      await env.stop();
    },
  };
}
