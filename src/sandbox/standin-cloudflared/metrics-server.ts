import http, { type Server } from 'node:http';
import { splitHostPort } from '../edge/standin-protocol.ts';

/**
 * The stand-in's metrics server, on the `--metrics` address, with cloudflared's three endpoints:
 *   /ready        {"status":200|503,"readyConnections":N,"connectorId":"…"}
 *   /healthcheck  always "OK"
 *   /metrics      Prometheus text
 * With the hang knob the server accepts connections and never answers, like a wedged process.
 */
export interface MetricsSource {
  connectorId: string;
  readyConnections(): number;
  metricsText(): string;
  hang: boolean;
}

/** cloudflared tries these ports in turn when `--metrics` is not given. */
const DEFAULT_METRICS_ADDRESSES = ['127.0.0.1:20241', '127.0.0.1:20242', '127.0.0.1:20243', '127.0.0.1:20244', '127.0.0.1:20245'];

function listen(server: Server, address: string): Promise<void> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startMetricsServer(address: string | null, source: MetricsSource): Promise<{ server: Server; address: string }> {
  const server = http.createServer((req, res) => {
    if (source.hang) return; // never answers; the client's timeout is the only way out
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/ready') {
      const ready = source.readyConnections();
      const status = ready > 0 ? 200 : 503;
      // cloudflared writes this JSON without a content type; Go's sniffing makes it text/plain.
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(JSON.stringify({ status, readyConnections: ready, connectorId: source.connectorId }));
      return;
    }
    if (path === '/healthcheck') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('OK\n');
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(source.metricsText());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('404 page not found\n');
  });
  const candidates = address === null ? DEFAULT_METRICS_ADDRESSES : [address];
  let lastError: unknown;
  for (const candidate of candidates) {
    try {
      await listen(server, candidate);
      const bound = server.address();
      if (bound === null || typeof bound === 'string') throw new Error(`The metrics server listens on ${String(bound)}, not on a TCP port.`);
      return { server, address: `${splitHostPort(candidate).host}:${bound.port}` };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
