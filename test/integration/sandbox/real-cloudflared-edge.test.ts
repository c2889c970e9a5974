import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorTunnelDirectory } from '../../../src/sandbox/cloudflare-emulator/tunnel-directory.ts';
import { startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';
import { realCloudflaredForTests } from '../../helpers/real-cloudflared.ts';
import { tempDir } from '../../helpers/standin-cloudflared.ts';
import { startSandboxEdge, type SandboxEdge } from '../../../src/sandbox/edge/edge.ts';

/**
 * The sandbox edge with the real cloudflared (2026.3.0): TLS with the sandbox's CA, HTTP/2 with cloudflared as the
 * server, the registration RPC, visitors' requests and websockets as streams, a remotely managed configuration pushed
 * from the Cloudflare API emulator, and a graceful stop that ends as soon as the edge has drained the connections.
 */
const binary = realCloudflaredForTests('the sandbox edge with the real cloudflared');

interface RunningCloudflared {
  child: ChildProcess;
  metrics: string;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let sandbox: CloudflareSandbox;
let edge: SandboxEdge;
let dir: { path: string; remove: () => void };
let origin: Server;
let originPort: number;
const running: RunningCloudflared[] = [];
/** Websocket connections the origin took over from its HTTP server (which no longer tracks them). */
const upgraded = new Set<net.Socket>();

/** Resolves with the first match of `pattern` in the process's stderr (a line cloudflared logs), or rejects after timeoutMs. */
function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, seen: () => string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const match = pattern.exec(seen());
      if (match === null) return;
      child.stderr?.off('data', check);
      clearTimeout(timer);
      resolve(match);
    };
    const timer = setTimeout(() => {
      child.stderr?.off('data', check);
      reject(new Error(`cloudflared did not log ${pattern} within ${timeoutMs} ms:\n${seen()}`));
    }, timeoutMs);
    child.stderr?.on('data', check);
    check();
  });
}

async function startCloudflared(ingress: string, options: { secret?: string; grace?: string } = {}): Promise<RunningCloudflared> {
  const tunnel = sandbox.emulator.tunnel(sandbox.emulator.tunnelId);
  const credentials = join(dir.path, `credentials-${running.length}.json`);
  writeFileSync(credentials, JSON.stringify({ AccountTag: tunnel?.accountId, TunnelSecret: options.secret ?? tunnel?.secret, TunnelID: sandbox.emulator.tunnelId }));
  const config = join(dir.path, `config-${running.length}.yml`);
  writeFileSync(config, `tunnel: ${sandbox.emulator.tunnelId}\ncredentials-file: ${credentials}\ningress:\n${ingress}`);
  const edges = Array.from({ length: 4 }, () => ['--edge', edge.tunnelAddress as string]).flat();
  const child = spawn(
    binary as string,
    ['tunnel', '--no-autoupdate', '--config', config, '--metrics', '127.0.0.1:0', ...edges, '--cacert', edge.caPath as string, '--protocol', 'http2', '--grace-period', options.grace ?? '30s', 'run', sandbox.emulator.tunnelId],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const metrics = (await waitForLine(child, /Starting metrics server on (\S+)\/metrics/, 15_000, () => log))[1] as string;
  const started = { child, metrics, log: () => log, exited };
  running.push(started);
  return started;
}

function rules(...lines: string[]): string {
  return lines.map((line) => `  - ${line}\n`).join('');
}

function visit(host: string, options: { path?: string; method?: string; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: edge.port, path: options.path ?? '/', method: options.method ?? 'GET', headers: { host }, agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

beforeAll(async () => {
  if (binary === null) return;
  dir = tempDir('real-edge');
  sandbox = await startCloudflareSandbox();
  edge = await startSandboxEdge({ listen: '127.0.0.1:0', tunnelListen: '127.0.0.1:0', caDir: dir.path, tunnels: emulatorTunnelDirectory(sandbox.emulator) });
  origin = http.createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
      setTimeout(() => {
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.setHeader('x-origin', 'one');
        res.end(JSON.stringify({ host: req.headers.host, url: req.url, method: req.method, body, visitor: req.headers['cf-connecting-ip'], ray: req.headers['cf-ray'] }));
      }, delay);
    });
  });
  // A websocket origin: answers the handshake, then echoes raw bytes back.
  origin.on('upgrade', (req: IncomingMessage, socket: net.Socket) => {
    upgraded.add(socket);
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), chunk])));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originPort = (origin.address() as AddressInfo).port;
}, 60_000);

afterAll(async () => {
  if (binary === null) return;
  for (const process of running) process.child.kill('SIGKILL');
  await Promise.all(running.map((process) => process.exited));
  await edge.close();
  await sandbox.close();
  upgraded.forEach((socket) => socket.destroy());
  await new Promise<void>((resolve) => {
    origin.close(() => resolve());
    origin.closeAllConnections();
  });
  dir.remove();
});

describe.skipIf(binary === null)('the sandbox edge with the real cloudflared', () => {
  it('registers four connections, says so on /ready, carries requests with their headers, and answers 404 and 502 as cloudflared does', async () => {
    const cloudflared = await startCloudflared(rules(`hostname: app.example.com\n    service: http://127.0.0.1:${originPort}`, 'hostname: down.example.com\n    service: http://127.0.0.1:1', 'service: http_status:404'));
    await edge.waitForConnectors(20_000, (connectors) => connectors.some((connector) => connector.connections === 4));
    const [connector] = edge.connectors();
    expect(connector).toMatchObject({ kind: 'cloudflared', version: '2026.3.0', tunnelId: sandbox.emulator.tunnelId, connections: 4, draining: 0 });
    // cloudflared tells a locally managed tunnel's edge its configuration after registering.
    expect(JSON.parse(connector?.localConfiguration ?? '{}')).toMatchObject({ ingress: [{ hostname: 'app.example.com' }, { hostname: 'down.example.com' }, { service: 'http_status:404' }] });
    const ready = (await (await fetch(`http://${cloudflared.metrics}/ready`)).json()) as { status: number; readyConnections: number };
    expect(ready).toMatchObject({ status: 200, readyConnections: 4 });
    expect(cloudflared.log()).toMatch(/Registered tunnel connection connIndex=0 connection=[0-9a-f-]{36} .*location=sbx01 protocol=http2/);

    const get = await visit('app.example.com', { path: '/x?y=1' });
    expect(get.status).toBe(200);
    expect(get.headers['x-origin']).toBe('one');
    expect(get.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(JSON.parse(get.body)).toMatchObject({ host: 'app.example.com', url: '/x?y=1', method: 'GET', visitor: '127.0.0.1', ray: expect.stringMatching(/-SBX$/) });
    const post = await visit('app.example.com', { method: 'POST', body: 'hello through the tunnel' });
    expect(JSON.parse(post.body)).toMatchObject({ method: 'POST', body: 'hello through the tunnel' });
    expect((await visit('nothing.example.com')).status).toBe(404);
    expect((await visit('down.example.com')).status).toBe(502);
    // cloudflared counts what it carried.
    const metrics = await (await fetch(`http://${cloudflared.metrics}/metrics`)).text();
    expect(Number(/^cloudflared_tunnel_total_requests (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(4);
    expect(Number(/^cloudflared_tunnel_request_errors (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/^cloudflared_tunnel_response_by_code\{status_code="200"\} \d+/m);
  });

  it('carries a websocket both ways', async () => {
    const socket = net.connect(edge.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.write('GET /ws HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await expect.poll(() => received, { timeout: 10_000 }).toMatch(/^HTTP\/1\.1 101 /);
    expect(received.toLowerCase()).toContain('sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=');
    socket.write('ping-1');
    await expect.poll(() => received, { timeout: 10_000 }).toContain('echo:ping-1');
    socket.destroy();
  });

  it('pushes a remotely managed configuration from the Cloudflare API to the connected cloudflared, which serves it at once', async () => {
    await sandbox.provider().putTunnelConfiguration({ ingress: [{ hostname: 'remote.example.com', service: `http://127.0.0.1:${originPort}` }, { service: 'http_status:418' }] });
    const version = sandbox.emulator.tunnel(sandbox.emulator.tunnelId)?.version;
    await edge.waitForConnectors(10_000, (connectors) => connectors.some((connector) => connector.appliedVersion === version));
    expect(JSON.parse((await visit('remote.example.com')).body)).toMatchObject({ host: 'remote.example.com' });
    expect((await visit('app.example.com')).status).toBe(418);
  });

  it('a graceful stop unregisters, finishes the request in flight, and ends as soon as the edge has drained the connections', async () => {
    const [cloudflared] = running;
    const slow = visit('remote.example.com', { path: '/?delay=1500' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const signalled = Date.now();
    cloudflared?.child.kill('SIGTERM');
    await edge.waitForConnectors(5_000, (connectors) => connectors.every((connector) => connector.connections === 0));
    expect((await slow).status).toBe(200);
    const exit = await cloudflared?.exited;
    expect(exit?.code).toBe(0);
    // Its grace period is 30 s; it ends once the edge closed the drained connections.
    expect(Date.now() - signalled).toBeLessThan(15_000);
    expect(cloudflared?.log()).toContain('Unregistered tunnel connection');
    expect((await visit('remote.example.com')).status).toBe(530);
  });

  it('refuses a cloudflared whose tunnel secret is wrong', async () => {
    const wrong = await startCloudflared(rules('service: http_status:404'), { secret: Buffer.alloc(32, 7).toString('base64') });
    await waitForLine(wrong.child, /Unauthorized: Invalid tunnel secret/, 15_000, wrong.log);
    expect(edge.connectors()).toEqual([]);
  });
});
