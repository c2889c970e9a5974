import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { IngressRule, OriginRequest } from '../../ingress-model.ts';
import { parseGoDuration } from './command-line.ts';
import { withoutHopByHop } from '../edge/standin-protocol.ts';
import type { RequestCounters } from './request-counters.ts';

/**
 * What the stand-in does with one public request relayed by the edge: find the ingress rule for its
 * Host and path, then answer it the way cloudflared would — proxy to an origin URL or a unix socket,
 * answer `http_status:NNN`, or serve the `hello_world` page. Every response is counted by status;
 * an origin that cannot be reached is a 502 and a request error.
 */
export type RuleMatcher = (hostname: string, path: string) => IngressRule | undefined;

export interface OriginProxyOptions {
  match: RuleMatcher;
  /** The file-level `originRequest`, merged under each rule's own. */
  defaults: OriginRequest;
  counters: RequestCounters;
  log: (level: 'INF' | 'WRN' | 'ERR' | 'DBG', message: string) => void;
}

const HELLO_WORLD = `<!doctype html><html><head><title>Hello, world</title></head><body><h1>Congrats! You created a tunnel!</h1><p>This page is served by the tunnel-manager stand-in cloudflared (hello_world service).</p></body></html>\n`;

function hostnameOf(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  return host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

function answer(res: ServerResponse, counters: RequestCounters, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  counters.recordResponse(status);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function proxy(req: IncomingMessage, res: ServerResponse, target: URL | { socketPath: string }, settings: OriginRequest, options: OriginProxyOptions): void {
  const { counters } = options;
  const headers = withoutHopByHop(req.headers);
  if (typeof settings.httpHostHeader === 'string') headers.host = settings.httpHostHeader;
  const connectTimeoutMs = typeof settings.connectTimeout === 'string' ? (parseGoDuration(settings.connectTimeout) ?? 30_000) : 30_000;
  const isHttps = target instanceof URL && target.protocol === 'https:';
  const request = (isHttps ? https : http).request({
    ...(target instanceof URL
      ? { host: target.hostname, port: target.port === '' ? (isHttps ? 443 : 80) : Number(target.port) }
      : { socketPath: target.socketPath }),
    method: req.method,
    path: req.url,
    headers,
    timeout: connectTimeoutMs,
    ...(isHttps
      ? {
          rejectUnauthorized: settings.noTLSVerify !== true,
          servername: typeof settings.originServerName === 'string' ? settings.originServerName : target.hostname,
        }
      : {}),
  });
  let failed = false;
  const fail = (reason: string): void => {
    if (failed) return;
    failed = true;
    counters.recordOriginError();
    options.log('ERR', `Request failed error="${reason}" originService=${target instanceof URL ? target.origin : `unix:${target.socketPath}`}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    answer(res, counters, 502, 'Bad Gateway: the stand-in cloudflared could not reach the origin service\n');
  };
  request.on('timeout', () => request.destroy(new Error(`connect timeout after ${connectTimeoutMs} ms`)));
  request.on('error', (error) => fail(error.message));
  request.on('response', (response) => {
    request.setTimeout(0);
    counters.recordResponse(response.statusCode ?? 502);
    res.writeHead(response.statusCode ?? 502, withoutHopByHop(response.headers));
    response.pipe(res);
    response.on('error', () => res.destroy());
  });
  req.pipe(request);
}

export function createOriginHandler(options: OriginProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { counters } = options;
  return (req, res) => {
    counters.concurrentRequests += 1;
    res.on('close', () => {
      counters.concurrentRequests -= 1;
    });
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const rule = options.match(hostnameOf(req), path);
    if (rule === undefined) {
      // A valid config always ends in a catch-all; this only happens with a config that skipped validation.
      answer(res, counters, 502, 'The stand-in cloudflared found no ingress rule for this request\n');
      return;
    }
    const settings: OriginRequest = { ...options.defaults, ...(rule.originRequest ?? {}) };
    const service = rule.service;
    const status = /^http_status:(\d{3})$/.exec(service);
    if (status !== null) {
      req.resume();
      answer(res, counters, Number(status[1]), '');
      return;
    }
    if (service === 'hello_world' || service === 'hello-world' || service === 'helloworld') {
      req.resume();
      answer(res, counters, 200, HELLO_WORLD, 'text/html; charset=utf-8');
      return;
    }
    if (service.startsWith('unix:')) {
      proxy(req, res, { socketPath: service.slice('unix:'.length) }, settings, options);
      return;
    }
    if (/^https?:\/\//.test(service)) {
      proxy(req, res, new URL(service), settings, options);
      return;
    }
    req.resume();
    counters.recordOriginError();
    answer(res, counters, 502, `The stand-in cloudflared does not proxy the service ${service} (only http, https, unix, http_status and hello_world)\n`);
  };
}
