/**
 * How stand-in connectors talk to the sandbox edge (see docs/decisions/0006-sandbox-edge-and-replica-reload.md).
 *
 * A connector opens `connections` long-held requests `POST CONNECT_PATH` to the edge, like cloudflared's
 * HA connections to Cloudflare. The edge answers 200 and keeps the response open: while it is open, the
 * connection is registered and the edge may send public requests to the connector's origin address
 * (given in a header). When either side closes it, the connection is gone — a crashed connector is
 * dropped at once, and a draining one stops receiving new requests as soon as it closes its connections.
 */
export const CONNECT_PATH = '/__standin-edge/connect';
export const STATUS_PATH = '/__standin-edge/status';

export const HEADER_CONNECTOR_ID = 'x-standin-connector-id';
export const HEADER_TUNNEL_ID = 'x-standin-tunnel-id';
export const HEADER_ORIGIN = 'x-standin-origin';
export const HEADER_CONNECTION_INDEX = 'x-standin-connection-index';
/** On a registration's answer: the edge's location name (cloudflared logs it and reports it in its metrics). */
export const HEADER_LOCATION = 'x-standin-location';
/** Set on every response the edge relays: which connector served it. */
export const HEADER_SERVED_BY = 'x-standin-served-by';

/** Headers that belong to one hop and are never forwarded. */
export const HOP_BY_HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

export function withoutHopByHop(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name.toLowerCase())) continue;
    kept[name] = value;
  }
  return kept;
}

export { splitHostPort } from '../../host-port.ts';
