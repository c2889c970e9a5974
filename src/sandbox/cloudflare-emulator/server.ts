import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { handleAdmin, type AdminContext } from './admin-routes.ts';
import { ApiFailure, apiFailures, failureEnvelope } from './api-envelope.ts';
import { API_PREFIX, handleApi, type ApiContext } from './api-handler.ts';
import type { EmulatedTunnel, EmulatorState } from './emulator-state.ts';
import { FaultBoard, type ActiveFault, type FaultSpec, type RoutePattern } from './faults.ts';
import { createFixtureState, FIXTURE_ACCOUNT_ID, FIXTURE_TUNNEL_ID } from './fixture.ts';
import { send } from './http-exchange.ts';
import { RequestLog, type RequestLogEntry } from './request-log.ts';
import { ALL_SCOPES, type Scope } from './routes/route-context.ts';
import { StateStore } from './state-store.ts';
import { analyticsLimits, type AnalyticsLimits, type DatasetLimits } from './analytics/analytics-limits.ts';
import type { ZonePlan } from './emulator-state.ts';
import type { TrafficLog } from '../traffic-log.ts';

/**
 * The local Cloudflare API: node:http on 127.0.0.1, serving the v4 subset Tunnel Manager uses under
 * `/client/v4`, with Cloudflare's envelope and error codes, bearer tokens, and fault knobs.
 * `POST /client/v4/graphql` answers the GraphQL Analytics subset from the sandbox edge's traffic log (analytics/).
 * Admin endpoints (bearer admin token): `GET /__admin/state`, `GET|POST /__admin/faults`, `POST /__admin/reset`.
 */

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
  /** What the sandbox edge carried, answered by `POST /graphql`; absent: every dataset answers no rows. */
  traffic?: TrafficLog;
  /** Per-plan limits of httpRequestsAdaptiveGroups replacing the defaults (analytics/analytics-limits.ts). */
  analyticsLimits?: Partial<Record<ZonePlan, Partial<DatasetLimits>>>;
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

/** A 40-character URL-safe token, shaped like a Cloudflare API token. */
export function newEmulatorToken(): string {
  return randomBytes(30).toString('base64url');
}

function tokenScopes(token: string, extraTokens: EmulatorTokenSpec[]): Map<string, ReadonlySet<Scope>> {
  const scopesOf = new Map<string, ReadonlySet<Scope>>([[token, new Set(ALL_SCOPES)]]);
  for (const extra of extraTokens) scopesOf.set(extra.token, new Set(extra.scopes));
  return scopesOf;
}

/** The answer for whatever a handler threw: its ApiFailure, or 10002 naming the error. */
function sendFailure(response: ServerResponse, error: unknown): void {
  if (error instanceof ApiFailure) {
    send(response, error.status, failureEnvelope(error.errors), error.headers);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    send(response, 500, failureEnvelope([{ code: 10002, message: `An unknown error has occurred (emulator: ${message})` }]));
  }
}

function createEmulatorServer(admin: AdminContext, api: ApiContext): Server {
  return createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const work = url.pathname.startsWith('/__admin/')
      ? handleAdmin(admin, request, response, url.pathname)
      : url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)
        ? handleApi(api, request, response, url)
        : Promise.reject(apiFailures.noRoute(url.pathname));
    work.catch((error: unknown) => {
      if (response.headersSent || request.socket.destroyed) return;
      sendFailure(response, error);
    });
  });
}

async function listen(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`The emulator listens on ${String(address)}, not on a TCP port.`);
  return `http://${address.address}:${address.port}`;
}

export async function startCloudflareEmulator(options: CloudflareEmulatorOptions = {}): Promise<CloudflareEmulator> {
  const token = options.token ?? newEmulatorToken();
  const adminToken = options.adminToken ?? token;
  const store = new StateStore(options.seed ?? createFixtureState, options.statePath);
  const faults = new FaultBoard(options.faults ?? []);
  const log = new RequestLog();
  const reset = (): void => {
    store.reset();
    faults.clear();
    log.clear();
  };
  const server = createEmulatorServer(
    { adminToken, store, faults, log, reset },
    {
      store,
      faults,
      log,
      scopesOf: tokenScopes(token, options.extraTokens ?? []),
      analytics: { traffic: options.traffic, limits: analyticsLimits(options.analyticsLimits) },
    },
  );
  const base = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');

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
    reset,
    requests: () => log.copies(),
  };
}

export type { FaultSpec, ActiveFault, RoutePattern, RequestLogEntry, AnalyticsLimits, DatasetLimits };
export { API_PREFIX };
