import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionPool } from './connection-pool.ts';
import { acceptStandinRegistration } from './standin-registrations.ts';
import { CONNECT_PATH, STATUS_PATH } from './standin-protocol.ts';
import { TunnelConnection } from './tunnel-connection.ts';
import type { TrafficLog } from '../traffic-log.ts';

/**
 * The edge's public listener: visitors' requests relayed over a registered connection (530 / 1033 with none), the
 * stand-in's registrations, and the status the sandbox reads. Each visitor's request it answers (relayed, or the
 * 530/502 it answers itself) is recorded in the traffic log, when it has one; websocket upgrades are not.
 */

/** The Host header, lowercase, without its port (`[v6]:port` keeps its brackets). */
function visitorHost(req: IncomingMessage): string {
  const host = (req.headers.host ?? '').toLowerCase();
  return host.replace(/:\d*$/, '');
}

/**
 * Records the response once it is sent (or the visitor went away): the bytes are what the socket wrote between the
 * request's start and its response's end, headers included; a keep-alive socket's earlier responses are not counted
 * because they were finished before this request was handled.
 */
function recordWhenDone(traffic: TrafficLog, req: IncomingMessage, res: ServerResponse): void {
  const at = Date.now();
  const socket = req.socket;
  const before = socket.bytesWritten;
  let done = false;
  const record = (): void => {
    if (done) return;
    done = true;
    traffic.record({ at, host: visitorHost(req), status: res.statusCode, bytes: Math.max(0, socket.bytesWritten - before) });
  };
  res.once('finish', record);
  res.once('close', record);
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

async function forward(pool: ConnectionPool, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  // A connection that went away between being picked and being asked is skipped: the request goes to the next one.
  let tried = 0;
  for (; tried < 8; tried += 1) {
    const connection = pool.pick();
    if (connection === null) break;
    if (await connection.forward(req, res, body)) return;
  }
  if (tried === 0) {
    answerNoConnector(res);
    return;
  }
  // Connectors were there but none answered (the one that had the request went away): a bad gateway.
  res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('error code: 502 (no connector answered)\n');
}

async function upgrade(pool: ConnectionPool, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  for (let tried = 0; tried < 8; tried += 1) {
    const connection = pool.pick((candidate) => candidate instanceof TunnelConnection);
    if (!(connection instanceof TunnelConnection)) break;
    if (await connection.upgrade(req, socket, head)) return;
  }
  socket.end('HTTP/1.1 530 Origin Unreachable\r\ncf-error-code: 1033\r\ncontent-length: 0\r\n\r\n');
}

export function createPublicServer(pool: ConnectionPool, agent: http.Agent, location: string, traffic?: TrafficLog): http.Server {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === CONNECT_PATH) {
      acceptStandinRegistration(req, res, agent, location, { onOpen: (connection) => pool.add(connection), onClose: (connection) => pool.remove(connection) });
      return;
    }
    if (req.method === 'GET' && path === STATUS_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pid: process.pid, connectors: pool.describe() }));
      return;
    }
    if (traffic) recordWhenDone(traffic, req, res);
    forward(pool, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    upgrade(pool, req, socket, head).catch(() => socket.destroy());
  });
  server.keepAliveTimeout = 5_000;
  // Registration requests are held open for as long as the connector lives.
  server.requestTimeout = 0;
  return server;
}
