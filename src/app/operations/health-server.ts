import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ErrorShape } from '../../errors.ts';
import { splitHostPort } from '../../host-port.ts';
import { isLoopbackHost, listenerGuard } from '../../listener-guard.ts';

export interface HealthServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Ready: the supervisor started (or restored) and the tunnel actor runs cloudflared. */
  readiness: () => { ready: boolean; reason: string };
  /** Where the live cloudflared serves its metrics right now (it moves between two ports on each replica reload). */
  cloudflaredMetricsAddress: () => string | null;
  logger?: Logger;
}

export interface HealthServer {
  /** Base URL, e.g. http://127.0.0.1:9464 */
  url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

/** The port a listening server got (the one asked for, or the one the OS chose for port 0). */
function boundPortOf(address: AddressInfo | string | null): number {
  if (address === null || typeof address === 'string') throw new Error(`the metrics listener is not on a TCP port (${String(address)})`);
  return address.port;
}

/**
 * The operator's listener, apart from MCP and needing no token: `/metrics` (the manager, Prometheus text),
 * `/healthz` (the process answers), `/readyz` (restored and the tunnel running; 503 with the reason otherwise), and
 * `/cloudflared/metrics`, a stable scrape target for cloudflared's own metrics whichever port the live process uses.
 * Read-only, GET and HEAD only; nothing it serves carries a secret. Host and Origin are checked as on the MCP listener.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { registry, logger } = options;
  const guard = listenerGuard(options.host);
  const hostInUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  let boundPort = options.port;

  /** The MCP listener's rule against DNS rebinding (src/listener-guard.ts): a page under a foreign name reads nothing. */
  function refuseForeignName(req: IncomingMessage, res: ServerResponse): boolean {
    const badHost = guard.refusedHost(req.headers.host);
    const refused = badHost ?? guard.refusedOrigin(req.headers.origin, req.headers['sec-fetch-site']);
    if (refused === null) return false;
    const what = badHost !== null ? 'Host' : 'Origin';
    const shape: ErrorShape = {
      code: 'FORBIDDEN',
      message: `The ${what} ${JSON.stringify(refused.slice(0, 200))} is not a name of this metrics listener (DNS rebinding protection).`,
      fix: `Scrape http://${hostInUrl}:${boundPort}/metrics${isLoopbackHost(options.host) ? ' (or localhost, 127.0.0.1 or [::1] on that port)' : ''}; browser pages under other names are refused.`,
      details: { [what.toLowerCase()]: refused.slice(0, 200) },
    };
    send(res, 403, 'application/json', JSON.stringify({ error: shape }));
    return true;
  }

  /** cloudflared's own metrics, from wherever the live process serves them. */
  async function proxyCloudflaredMetrics(res: ServerResponse): Promise<void> {
    const address = options.cloudflaredMetricsAddress();
    if (address === null) {
      send(res, 503, 'text/plain', 'cloudflared is not running\n');
      return;
    }
    try {
      const upstream = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(5000) });
      send(res, upstream.status, upstream.headers.get('content-type') ?? 'text/plain', await upstream.text());
    } catch (error) {
      send(res, 502, 'text/plain', `cloudflared did not answer on ${address}: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  const routes = new Map<string, (res: ServerResponse) => Promise<void> | void>([
    ['/metrics', async (res) => send(res, 200, registry.contentType, await registry.metrics())],
    ['/healthz', (res) => send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }))],
    [
      '/readyz',
      (res) => {
        const { ready, reason } = options.readiness();
        send(res, ready ? 200 : 503, 'application/json', JSON.stringify({ status: ready ? 'ready' : 'not ready', reason }));
      },
    ],
    ['/cloudflared/metrics', proxyCloudflaredMetrics],
  ]);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (refuseForeignName(req, res)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const route = routes.get(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (route) await route(res);
    else send(res, 404, 'text/plain', 'Served here: /metrics, /healthz, /readyz, /cloudflared/metrics\n');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger?.error({ err: error }, 'metrics request failed');
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  boundPort = boundPortOf(server.address());
  const url = `http://${hostInUrl}:${boundPort}`;
  logger?.info({ url }, 'metrics and health listening');
  return {
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The manager's own health listener at `listen` (HOST:PORT): its metrics, ready once the tunnel actor runs
 * cloudflared, and cloudflared's metrics wherever the live process serves them.
 */
export function startManagerHealthServer(options: {
  listen: string;
  metrics: { registry: Registry };
  backend: { status(): { state: string; pid: number | null } };
  metricsAddress: () => string;
  logger: Logger;
}): Promise<HealthServer> {
  return startHealthServer({
    ...splitHostPort(options.listen),
    registry: options.metrics.registry,
    readiness: () => {
      const state = options.backend.status().state;
      return state.startsWith('running') ? { ready: true, reason: `tunnel ${state}` } : { ready: false, reason: `tunnel ${state}: not serving yet` };
    },
    cloudflaredMetricsAddress: () => (options.backend.status().pid === null ? null : options.metricsAddress()),
    logger: options.logger,
  });
}
