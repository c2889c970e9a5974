import { randomBytes } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http2';

/**
 * Headers on the way through the edge, as Cloudflare's edge sets them:
 *
 * - to cloudflared, a visitor's request is a plain HTTP/2 request: `:authority` is the visitor's Host (cloudflared
 *   matches ingress rules on it and sends it to the origin), the visitor's own headers follow, and the edge adds who
 *   the visitor is (`cf-connecting-ip`, `x-forwarded-for`, `cf-ray`, `x-forwarded-proto`, `cf-visitor`);
 * - from cloudflared, the origin's headers arrive serialized in `cf-cloudflared-response-headers`
 *   (`base64(name):base64(value)` pairs joined by `;`, unpadded standard base64) beside the status; an answer
 *   cloudflared made itself (the origin could not be reached: `cf-cloudflared-response-meta` says `src: cloudflared`)
 *   has none.
 */

/** Headers of one hop that never cross a proxy (and that HTTP/2 forbids). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'http2-settings']);

/** What the edge needs of a visitor's request. */
export type VisitorRequest = Pick<IncomingMessage, 'headers' | 'method' | 'url' | 'socket'>;

export function newRayId(): string {
  return `${randomBytes(8).toString('hex')}-SBX`;
}

export function requestHeadersFor(req: VisitorRequest): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    ':method': req.method ?? 'GET',
    ':path': req.url ?? '/',
    ':authority': req.headers.host ?? '',
  };
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    headers[name] = value;
  }
  const visitor = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  const forwarded = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = forwarded === undefined ? visitor : `${String(forwarded)}, ${visitor}`;
  headers['cf-connecting-ip'] = visitor;
  headers['cf-ray'] = req.headers['cf-ray'] ?? newRayId();
  headers['x-forwarded-proto'] = 'http';
  headers['cf-visitor'] = '{"scheme":"http"}';
  return headers;
}

function fromBase64(text: string): string {
  return Buffer.from(text, 'base64').toString('utf8');
}

/** The origin's headers out of cloudflared's answer, ready for the visitor's HTTP/1.1 response. */
export function decodeResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const decoded: Record<string, string | string[]> = {};
  const serialized = headers['cf-cloudflared-response-headers'];
  if (typeof serialized === 'string' && serialized !== '') {
    for (const pair of serialized.split(';')) {
      const colon = pair.indexOf(':');
      if (colon < 0) continue;
      const name = fromBase64(pair.slice(0, colon)).toLowerCase();
      if (HOP_BY_HOP.has(name) && name !== 'upgrade') continue;
      const value = fromBase64(pair.slice(colon + 1));
      const earlier = decoded[name];
      decoded[name] = earlier === undefined ? value : [...(Array.isArray(earlier) ? earlier : [earlier]), value];
    }
  }
  // The length is also a real header (the serialized set may lack it when cloudflared decompressed the body).
  const length = headers['content-length'];
  if (decoded['content-length'] === undefined && typeof length === 'string') decoded['content-length'] = length;
  if (serialized === undefined && headers['cf-cloudflared-response-meta'] !== undefined) {
    // cloudflared's own answer (the origin could not be reached): say so as Cloudflare does.
    decoded['cf-error-source'] = 'cloudflared';
  }
  return decoded;
}

/** An HTTP/1.1 status line and header block, for a raw socket (the websocket handshake). */
export function statusLine(status: number, headers: Record<string, string | string[]>): string {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`];
  for (const [name, value] of Object.entries(headers)) {
    for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}
