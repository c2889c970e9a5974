import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import {
  HEADER_CONNECTION_INDEX,
  HEADER_CONNECTOR_ID,
  HEADER_LOCATION,
  HEADER_ORIGIN,
  HEADER_SERVED_BY,
  HEADER_TUNNEL_ID,
  withoutHopByHop,
} from './standin-protocol.ts';
import { newRayId } from './proxy-headers.ts';

/**
 * The edge's side of the stand-in cloudflared's registrations (standin-protocol.ts): each long-held
 * `POST /__standin-edge/connect` is one connection, open for as long as the response is; a visitor's request is relayed
 * over HTTP to the origin address the stand-in gave.
 */
export interface StandinConnection {
  readonly kind: 'standin';
  readonly connectorId: string;
  readonly tunnelId: string;
  readonly index: string;
  readonly origin: string;
  readonly accepting: boolean;
  forward(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<boolean>;
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

/** Relays one request to a stand-in's origin address; false when it could not be reached at all. */
function relay(agent: http.Agent, connection: StandinConnection, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const url = new URL(connection.origin);
    const headers = withoutHopByHop(req.headers);
    headers['content-length'] = String(body.length);
    const visitor = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    const forwarded = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = forwarded === undefined ? visitor : `${String(forwarded)}, ${visitor}`;
    headers['cf-connecting-ip'] = visitor;
    headers['cf-ray'] = req.headers['cf-ray'] ?? newRayId();
    const upstream = http.request({ host: url.hostname, port: url.port, method: req.method, path: req.url, headers, agent }, (response) => {
      const responseHeaders = withoutHopByHop(response.headers);
      responseHeaders[HEADER_SERVED_BY] = connection.connectorId;
      res.writeHead(response.statusCode ?? 502, responseHeaders);
      response.pipe(res);
      response.on('error', () => res.destroy());
      resolve(true);
    });
    upstream.on('error', () => resolve(false));
    upstream.end(body);
  });
}

/**
 * Accepts one registration; calls `onOpen` with the connection, and `onClose` when either side ends it. Answers 400
 * (and opens nothing) when a header is missing.
 */
export function acceptStandinRegistration(
  req: IncomingMessage,
  res: ServerResponse,
  agent: http.Agent,
  location: string,
  events: { onOpen: (connection: StandinConnection) => void; onClose: (connection: StandinConnection) => void },
): void {
  const connectorId = req.headers[HEADER_CONNECTOR_ID];
  const origin = req.headers[HEADER_ORIGIN];
  const tunnelId = req.headers[HEADER_TUNNEL_ID];
  const index = req.headers[HEADER_CONNECTION_INDEX];
  if (typeof connectorId !== 'string' || typeof origin !== 'string' || typeof index !== 'string') {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`a connection needs the headers ${HEADER_CONNECTOR_ID}, ${HEADER_ORIGIN} and ${HEADER_CONNECTION_INDEX}\n`);
    return;
  }
  let open = true;
  const connection: StandinConnection = {
    kind: 'standin',
    connectorId,
    tunnelId: typeof tunnelId === 'string' ? tunnelId : '',
    index,
    origin: reachableOrigin(origin, req.socket.remoteAddress),
    get accepting() {
      return open;
    },
    forward: (visitorRequest, visitorResponse, body) => relay(agent, connection, visitorRequest, visitorResponse, body),
  };
  res.on('close', () => {
    open = false;
    events.onClose(connection);
  });
  req.socket.setKeepAlive(true, 1000);
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', [HEADER_LOCATION]: location });
  res.write(`registered connection ${index}\n`);
  events.onOpen(connection);
}
