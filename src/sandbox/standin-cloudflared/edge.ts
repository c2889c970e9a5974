import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CONNECT_PATH,
  HEADER_CONNECTION_INDEX,
  HEADER_CONNECTOR_ID,
  HEADER_ORIGIN,
  HEADER_SERVED_BY,
  HEADER_TUNNEL_ID,
  STATUS_PATH,
  splitHostPort,
  withoutHopByHop,
} from './edge-protocol.ts';

/**
 * The sandbox edge: the public side of the stand-in tunnel, playing Cloudflare's part.
 * It listens on one 127.0.0.1 port for public HTTP requests and relays each one to a connector
 * (a stand-in cloudflared) that currently holds at least one registered connection.
 * Because the port belongs to the edge and not to any connector, two replicas of the tunnel can serve
 * it at once, which is what a reload without downtime needs (docs/decisions/0006-sandbox-edge-and-replica-reload.md).
 */
export interface EdgeConnectorInfo {
  connectorId: string;
  tunnelId: string;
  origin: string;
  connections: number;
}

export interface StandinEdge {
  /** "127.0.0.1:PORT" actually bound (the port is chosen by the OS when 0 was asked for). */
  address: string;
  port: number;
  connectors(): EdgeConnectorInfo[];
  /** Resolves when some connector holds at least one connection (or rejects after timeoutMs). */
  waitForConnector(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

interface ConnectorEntry {
  info: Omit<EdgeConnectorInfo, 'connections'>;
  connections: Set<string>;
}

/** Cloudflare answers 530 with error 1033 when no connector of the tunnel is connected. */
function answerNoConnector(res: ServerResponse): void {
  res.writeHead(530, { 'content-type': 'text/plain; charset=utf-8', 'cf-error-code': '1033' });
  res.end('error code: 1033\n');
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * A connector that takes requests on every address (0.0.0.0, a stand-in in a container) is reached at the address
 * its registration came from.
 */
function reachableOrigin(origin: string, remoteAddress: string | undefined): string {
  const url = new URL(origin);
  if ((url.hostname !== '0.0.0.0' && url.hostname !== '[::]') || remoteAddress === undefined) return origin;
  const address = remoteAddress.replace(/^::ffff:/, '');
  url.hostname = address.includes(':') ? `[${address}]` : address;
  return url.toString().replace(/\/$/, '');
}

export async function startStandinEdge(options: { listen: string }): Promise<StandinEdge> {
  const { host, port } = splitHostPort(options.listen);
  const connectors = new Map<string, ConnectorEntry>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let nextIndex = 0;
  let waiters: (() => void)[] = [];

  const live = (): ConnectorEntry[] => [...connectors.values()].filter((entry) => entry.connections.size > 0);

  function register(req: IncomingMessage, res: ServerResponse): void {
    const connectorId = req.headers[HEADER_CONNECTOR_ID];
    const origin = req.headers[HEADER_ORIGIN];
    const tunnelId = req.headers[HEADER_TUNNEL_ID];
    const index = req.headers[HEADER_CONNECTION_INDEX];
    if (typeof connectorId !== 'string' || typeof origin !== 'string' || typeof index !== 'string') {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`a connection needs the headers ${HEADER_CONNECTOR_ID}, ${HEADER_ORIGIN} and ${HEADER_CONNECTION_INDEX}\n`);
      return;
    }
    const entry = connectors.get(connectorId) ?? {
      info: { connectorId, origin: reachableOrigin(origin, req.socket.remoteAddress), tunnelId: typeof tunnelId === 'string' ? tunnelId : '' },
      connections: new Set<string>(),
    };
    connectors.set(connectorId, entry);
    entry.connections.add(index);
    const drop = (): void => {
      entry.connections.delete(index);
      if (entry.connections.size === 0) connectors.delete(connectorId);
    };
    res.on('close', drop);
    req.socket.setKeepAlive(true, 1000);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.write(`registered connection ${index}\n`);
    const ready = waiters;
    waiters = [];
    ready.forEach((wake) => wake());
  }

  function status(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ pid: process.pid, connectors: describe() }));
  }

  function describe(): EdgeConnectorInfo[] {
    return [...connectors.values()].map((entry) => ({ ...entry.info, connections: entry.connections.size }));
  }

  /** Sends the request to one connector; resolves false when that connector could not be reached at all. */
  function relay(req: IncomingMessage, res: ServerResponse, body: Buffer, target: ConnectorEntry): Promise<boolean> {
    return new Promise((resolve) => {
      const url = new URL(target.info.origin);
      const headers = withoutHopByHop(req.headers);
      headers['content-length'] = String(body.length);
      const forwarded = req.headers['x-forwarded-for'];
      headers['x-forwarded-for'] = forwarded === undefined ? '127.0.0.1' : `${String(forwarded)}, 127.0.0.1`;
      headers['cf-connecting-ip'] = req.socket.remoteAddress ?? '127.0.0.1';
      const upstream = http.request(
        { host: url.hostname, port: url.port, method: req.method, path: req.url, headers, agent },
        (response) => {
          const responseHeaders = withoutHopByHop(response.headers);
          responseHeaders[HEADER_SERVED_BY] = target.info.connectorId;
          res.writeHead(response.statusCode ?? 502, responseHeaders);
          response.pipe(res);
          response.on('error', () => res.destroy());
          resolve(true);
        },
      );
      upstream.on('error', () => resolve(false));
      upstream.end(body);
    });
  }

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    // A connector that closed between being picked and being reached is skipped: the request goes to the next one.
    let tried = 0;
    for (; tried < 6; tried += 1) {
      const candidates = live();
      if (candidates.length === 0) break;
      const target = candidates[nextIndex++ % candidates.length] as ConnectorEntry;
      if (await relay(req, res, body, target)) return;
    }
    if (tried === 0) {
      answerNoConnector(res);
      return;
    }
    res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('error code: 502 (no connector answered)\n');
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === CONNECT_PATH) return register(req, res);
    if (req.method === 'GET' && path === STATUS_PATH) return status(res);
    forward(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  // Registration requests are held open for as long as the connector lives.
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;

  return {
    address: `${host}:${bound.port}`,
    port: bound.port,
    connectors: describe,
    waitForConnector(timeoutMs) {
      if (live().length > 0) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((wake) => wake !== done);
          reject(new Error(`no connector registered with the sandbox edge at ${host}:${bound.port} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push(done);
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      });
    },
  };
}
