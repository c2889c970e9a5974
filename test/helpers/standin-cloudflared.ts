import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { IngressRule } from '../../src/ingress-model.ts';
import { STANDIN_CLOUDFLARED_BUNDLE } from '../../src/package-root.ts';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * What goes before `tunnel` to run the stand-in instead of cloudflared: the built stand-in, as the sandbox runs it
 * (test/global-setup.ts builds dist/ from the current sources before any test starts, so it is never stale).
 */
export const STANDIN_COMMAND = [process.execPath, STANDIN_CLOUDFLARED_BUNDLE];
export const TUNNEL_ID = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b';

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `tm-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A port that was free a moment ago (bound, read, released), for a listener a test starts later. It is drawn from
 * 20000-29999, below Linux's ephemeral range (32768-60999): a port the kernel handed out for `listen(0)` is also the
 * kind it hands to the next outgoing connection, and under a parallel suite one of those took a manager's metrics
 * address between this call and cloudflared's start (the tunnel then backed off for the whole test).
 */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const server = net.createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, address, () => resolve(true));
    });
    if (!bound) continue;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }
  throw new Error('no free port between 20000 and 29999 after 100 tries');
}

export function writeTunnelConfig(path: string, ingress: IngressRule[]): string {
  writeFileSync(path, stringify({ tunnel: TUNNEL_ID, ingress }));
  return path;
}

/** A real origin on 127.0.0.1 that says who it is; `?delay=MS` makes it answer late. */
export async function startOrigin(name: string): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': name });
      res.end(`${name} ${req.method} ${req.url} host=${req.headers.host}\n`);
    }, delay);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface RunningStandin {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the stand-in as a plain child of the test (for tests of the stand-in itself, not of a driver). */
export function runStandin(args: string[], env: NodeJS.ProcessEnv = {}): RunningStandin {
  const child = spawn(process.execPath, [STANDIN_CLOUDFLARED_BUNDLE, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Polls `probe` until it returns something other than undefined, null or false. */
export async function waitFor<T>(probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function getJson(url: string): Promise<{ status: number; body: unknown } | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return { status: response.status, body: await response.json() };
  } catch {
    return undefined;
  }
}

/** GET through the edge with a Host header (fetch cannot set Host, so node:http it is). */
export function getViaEdge(edgePort: number, host: string, path = '/'): Promise<{ status: number; body: string; servedBy: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: edgePort, path, method: 'GET', headers: { host }, agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body, servedBy: response.headers['x-standin-served-by'] as string | undefined }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

/** Reads /ready until it answers 200 with at least `connections` ready connections (they register one by one). */
export function waitReady(metricsAddress: string, connections = 1, timeoutMs = 10_000): Promise<unknown> {
  return waitFor(async () => {
    const ready = await getJson(`http://${metricsAddress}/ready`);
    const body = ready?.body as { readyConnections?: number } | undefined;
    return ready?.status === 200 && (body?.readyConnections ?? 0) >= connections ? ready.body : undefined;
  }, timeoutMs, `/ready 200 with ${connections} connection(s) on ${metricsAddress}`);
}

/** Stand-in cloudflared processes running on the given config.yml (a manager started them), found in /proc. */
export function standinPidsFor(configPath: string): number[] {
  return cloudflaredPidsFor(configPath).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.endsWith('standin-cloudflared.js'));
    } catch {
      return false;
    }
  });
}

/** cloudflared processes (the real one or the stand-in) running a tunnel on the given config.yml, found in /proc. */
export function cloudflaredPidsFor(configPath: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.includes('tunnel') && argv.includes('run') && argv.includes(configPath)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
