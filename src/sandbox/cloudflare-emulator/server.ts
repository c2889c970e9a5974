import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiFailure, apiFailures, failureEnvelope, successEnvelope, type Envelope } from './api-envelope.ts';
import type { EmulatedTunnel, EmulatorState } from './emulator-state.ts';
import { FaultBoard, type ActiveFault, type FaultSpec, type RoutePattern } from './faults.ts';
import { createFixtureState, FIXTURE_ACCOUNT_ID, FIXTURE_TUNNEL_ID } from './fixture.ts';
import { routeRequest } from './request-router.ts';
import { ALL_SCOPES, type Scope } from './routes/route-context.ts';
import { StateStore } from './state-store.ts';

/**
 * The local Cloudflare API: node:http on 127.0.0.1, serving the v4 subset Tunnel Manager uses under
 * `/client/v4`, with Cloudflare's envelope and error codes, bearer tokens, and fault knobs.
 * Admin endpoints (bearer admin token): `GET /__admin/state`, `GET|POST /__admin/faults`, `POST /__admin/reset`.
 */

export const API_PREFIX = '/client/v4';

export interface EmulatorTokenSpec {
  token: string;
  scopes: readonly Scope[];
}

export interface CloudflareEmulatorOptions {
  /** Default 0: an ephemeral port. */
  port?: number;
  /** Only loopback makes sense; default 127.0.0.1. */
  host?: string;
  /** The API token with every permission; default a fresh random 40-character token. */
  token?: string;
  /** More tokens with narrower permissions (e.g. read-only, to exercise 10000). */
  extraTokens?: EmulatorTokenSpec[];
  /** Token for /__admin; default the API token. */
  adminToken?: string;
  /** Seed state; default the fixture (153.se and friends). Called again on reset. */
  seed?: () => EmulatorState;
  /** Keep the state in this JSON file too (loaded at start when it exists). */
  statePath?: string;
  /** Faults active from the start. */
  faults?: FaultSpec[];
}

export interface RequestLogEntry {
  at: number;
  method: string;
  /** The route pattern, or the raw path when no route matched. */
  route: string;
  path: string;
  status: number | 'dropped';
  fault?: ActiveFault;
}

export interface CloudflareEmulator {
  /** http://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT/client/v4, the SDK's `baseURL`. */
  apiBaseUrl: string;
  token: string;
  adminToken: string;
  accountId: string;
  tunnelId: string;
  close(): Promise<void>;
  setFaults(faults: FaultSpec[]): void;
  addFaults(faults: FaultSpec[]): void;
  faults(): ActiveFault[];
  /** A deep copy of the current state. */
  state(): EmulatorState;
  /** A copy of one tunnel (cheaper than the whole state), or undefined. */
  tunnel(id: string): EmulatedTunnel | undefined;
  /** Calls `listener` after every change of the state (an API write, a reset); returns an unsubscribe. */
  onChange(listener: () => void): () => void;
  /** Back to the seed, faults cleared, request log emptied. */
  reset(): void;
  requests(): RequestLogEntry[];
}

const MAX_LOG = 5000;

/** A 40-character URL-safe token, shaped like a Cloudflare API token. */
export function newEmulatorToken(): string {
  return randomBytes(30).toString('base64url');
}

function send(response: ServerResponse, status: number, envelope: Envelope | Record<string, unknown>, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(envelope);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw apiFailures.invalidJson();
  }
}

function bearer(request: IncomingMessage): string | undefined | null {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
  return match === null ? null : match[1];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startCloudflareEmulator(options: CloudflareEmulatorOptions = {}): Promise<CloudflareEmulator> {
  const token = options.token ?? newEmulatorToken();
  const adminToken = options.adminToken ?? token;
  const scopesOf = new Map<string, ReadonlySet<Scope>>([[token, new Set(ALL_SCOPES)]]);
  for (const extra of options.extraTokens ?? []) scopesOf.set(extra.token, new Set(extra.scopes));
  const store = new StateStore(options.seed ?? createFixtureState, options.statePath);
  const faults = new FaultBoard(options.faults ?? []);
  let log: RequestLogEntry[] = [];

  const record = (entry: RequestLogEntry) => {
    log.push(entry);
    if (log.length > MAX_LOG) log = log.slice(-MAX_LOG);
  };

  async function handleAdmin(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    if (bearer(request) !== adminToken) {
      send(response, 401, failureEnvelope([{ code: 10000, message: 'Authentication error (admin token required)' }]));
      return;
    }
    const body = request.method === 'POST' ? await readBody(request) : undefined;
    if (path === '/__admin/state' && request.method === 'GET') {
      send(response, 200, successEnvelope({ state: store.snapshot(), faults: faults.list(), requests: log }));
    } else if (path === '/__admin/faults' && request.method === 'GET') {
      send(response, 200, successEnvelope(faults.list()));
    } else if (path === '/__admin/faults' && request.method === 'POST') {
      const input = (body ?? {}) as { faults?: unknown; mode?: unknown };
      const specs = Array.isArray(input.faults) ? (input.faults as FaultSpec[]) : [];
      try {
        if (input.mode === 'append') faults.add(specs);
        else faults.set(specs);
      } catch (error) {
        send(response, 400, failureEnvelope([{ code: 1004, message: (error as Error).message }]));
        return;
      }
      send(response, 200, successEnvelope(faults.list()));
    } else if (path === '/__admin/reset' && request.method === 'POST') {
      store.reset();
      faults.clear();
      log = [];
      send(response, 200, successEnvelope({ reset: true }));
    } else {
      send(response, 404, failureEnvelope([{ code: 7000, message: `No admin route for ${request.method} ${path}` }]));
    }
  }

  async function handleApi(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const method = request.method ?? 'GET';
    const path = url.pathname.slice(API_PREFIX.length) || '/';
    const match = routeRequest(method, path);
    if (match.kind === 'no-route') throw apiFailures.noRoute(url.pathname);
    if (match.kind === 'wrong-method') throw apiFailures.methodNotAllowed();

    const fault = faults.take(match.pattern);
    const entry: RequestLogEntry = { at: Date.now(), method, route: match.pattern, path, status: 200, ...(fault ? { fault } : {}) };
    try {
      if (fault?.latencyMs) await sleep(fault.latencyMs);
      if (fault?.drop === 'before') {
        entry.status = 'dropped';
        request.socket.destroy();
        return;
      }
      if (fault?.status === 429) throw apiFailures.rateLimited(fault.retryAfterSeconds ?? 1);
      if (fault?.status !== undefined) throw apiFailures.internal(fault.status);

      const presented = bearer(request);
      if (presented === undefined || presented === null) throw apiFailures.malformedAuthorization();
      const scopes = scopesOf.get(presented);
      if (scopes === undefined) throw apiFailures.invalidToken();
      if (match.handler.scope !== 'self' && !scopes.has(match.handler.scope)) throw apiFailures.missingPermission();

      const body = await readBody(request);
      const answer = match.handler.handle({ params: match.params, query: url.searchParams, body, path: url.pathname, store });
      if (fault?.drop === 'after') {
        entry.status = 'dropped';
        request.socket.destroy();
        return;
      }
      entry.status = answer.status ?? 200;
      send(response, entry.status, successEnvelope(answer.result, answer.resultInfo));
    } catch (error) {
      if (error instanceof ApiFailure) entry.status = error.status;
      throw error;
    } finally {
      record(entry);
    }
  }

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const work = url.pathname.startsWith('/__admin/')
      ? handleAdmin(request, response, url.pathname)
      : url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)
        ? handleApi(request, response, url)
        : Promise.reject(apiFailures.noRoute(url.pathname));
    work.catch((error: unknown) => {
      if (response.headersSent || request.socket.destroyed) return;
      if (error instanceof ApiFailure) {
        send(response, error.status, failureEnvelope(error.errors), error.headers);
      } else {
        send(response, 500, failureEnvelope([{ code: 10002, message: `An unknown error has occurred (emulator: ${(error as Error).message})` }]));
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const base = `http://${address.address}:${address.port}`;

  return {
    url: base,
    apiBaseUrl: `${base}${API_PREFIX}`,
    token,
    adminToken,
    accountId: store.state.accounts[0]?.id ?? FIXTURE_ACCOUNT_ID,
    tunnelId: store.state.tunnels[0]?.id ?? FIXTURE_TUNNEL_ID,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
    setFaults: (specs) => faults.set(specs),
    addFaults: (specs) => faults.add(specs),
    faults: () => faults.list(),
    state: () => store.snapshot(),
    tunnel: (id) => {
      const found = store.state.tunnels.find((tunnel) => tunnel.id === id);
      return found === undefined ? undefined : structuredClone(found);
    },
    onChange: (listener) => store.onChange(listener),
    reset: () => {
      store.reset();
      faults.clear();
      log = [];
    },
    requests: () => log.map((entry) => ({ ...entry })),
  };
}

export type { FaultSpec, ActiveFault, RoutePattern };
