import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiFailures, type Envelope } from './api-envelope.ts';

/** The emulator's side of one HTTP exchange: the JSON answer, the JSON body, the bearer token. */

export function send(response: ServerResponse, status: number, envelope: Envelope | Record<string, unknown>, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(envelope);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

/** The parsed JSON body, undefined when there is none, 9207 when it is not JSON. */
export async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed;
  } catch {
    throw apiFailures.invalidJson();
  }
}

/** The bearer token; undefined without an Authorization header, null when the header is not `Bearer <token>`. */
export function bearer(request: IncomingMessage): string | undefined | null {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
  return match === null ? null : match[1];
}

export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));
