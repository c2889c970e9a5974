import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Logger } from 'pino';
import type { ErrorShape } from '../errors.ts';
import type { McpBackend } from '../contract/backend.ts';
import { DenialAudit } from './denial-audit.ts';
import { SessionEventStore } from './event-store.ts';
import type { Principal } from '../contract/principal.ts';
import type { PrincipalDirectory } from './principal.ts';
import { ToolCallLimiter } from './call-limits.ts';
import { CallsInFlight, shuttingDown } from './calls-in-flight.ts';
import { isLoopbackHost, listenerGuard } from '../listener-guard.ts';
import { createMcpServer, type McpSession } from './server.ts';
import { sessionRefusal } from './authorization.ts';

export const MCP_PATH = '/mcp';

export interface McpHttpServerOptions {
  host: string;
  port: number;
  directory: PrincipalDirectory;
  backend: McpBackend;
  logger?: Logger;
  /** Browser origins allowed besides this listener's own names (`mcp.allowedOrigins`). */
  allowedOrigins?: string[];
  /** Open sessions per project (`mcp.maxSessionsPerProject`); default 16. */
  maxSessionsPerProject?: number;
  /** A session with no request for this long is closed (`mcp.sessionIdleMinutes`); default 30 minutes. */
  sessionIdleMs?: number;
  /** Tool calls per project per minute over all its sessions (`limits.toolCallsPerMinute`); default 0: no limit. */
  toolCallsPerMinute?: number;
  /** How long a stop waits for the calls running to finish before it answers them SHUTTING_DOWN (`mcp.shutdownGraceSeconds`); default 5 s. */
  shutdownGraceMs?: number;
}

export interface McpHttpServer {
  url: string;
  port: number;
  /** Connected sessions, by principal. */
  sessions(): { sessionId: string; project: string }[];
  close(): Promise<void>;
}

interface Session {
  principal: Principal;
  transport: StreamableHTTPServerTransport;
  mcp: McpSession;
  /** When its last request started or ended. */
  lastSeen: number;
  /** Requests still open on it (a GET stream of notifications stays open): a session in use is never idle. */
  open: number;
}

function sendError(res: ServerResponse, status: number, shape: ErrorShape, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: shape }));
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

/** Waits until every response of `open` is written and closed (each one leaves the set as it closes), at most `timeoutMs`. */
async function written(open: ReadonlySet<ServerResponse>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (open.size > 0 && Date.now() < deadline) {
    const next = open.values().next().value as ServerResponse;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadline - Date.now());
      next.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * MCP over Streamable HTTP on a loopback address. The bearer token of every request decides the principal;
 * a session belongs to the principal that opened it, and a request with another project's token is refused.
 * One MCP server per session.
 */
export async function startMcpHttpServer(options: McpHttpServerOptions): Promise<McpHttpServer> {
  const { directory, backend, logger } = options;
  const sessions = new Map<string, Session>();
  const maxSessions = options.maxSessionsPerProject ?? 16;
  const idleMs = options.sessionIdleMs ?? 30 * 60_000;
  let boundPort = options.port;
  const hostInUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const guard = listenerGuard(options.host, options.allowedOrigins ?? []);
  const denials = new DenialAudit((entry) => backend.recordAudit(entry));
  const callLimiter = new ToolCallLimiter(options.toolCallsPerMinute ?? 0);
  const inFlight = new CallsInFlight();
  const shutdownGraceMs = options.shutdownGraceMs ?? 5000;
  /** Set by close(): every new request is refused with SHUTTING_DOWN. */
  let closing = false;
  /** POST requests whose answer is still being written (an interrupted call's answer must reach its client). */
  const answering = new Set<ServerResponse>();

  /**
   * The spec's rule against DNS rebinding (src/listener-guard.ts): the Host must be a name of this listener (on
   * loopback: localhost, 127.0.0.1, [::1], any port), and an Origin, when there is one, too or one of
   * `mcp.allowedOrigins`; a browser's cross-site request without one is refused. Agents and the CLI send no Origin.
   * Answers the refusal to send, or null.
   */
  function refusal(req: IncomingMessage): { shape: ErrorShape; audit: Record<string, string> } | null {
    const badHost = guard.refusedHost(req.headers.host);
    if (badHost !== null) {
      return {
        audit: { host: badHost.slice(0, 200) },
        shape: {
          code: 'FORBIDDEN',
          message: `The Host ${JSON.stringify(badHost.slice(0, 200))} is not a name of this MCP listener: it answers to its own address only (DNS rebinding protection).`,
          fix: `Connect to http://${hostInUrl}:${boundPort}${MCP_PATH}${isLoopbackHost(options.host) ? ' (or localhost, 127.0.0.1 or [::1] on that port)' : ''}; a page reaching this listener under another name is refused.`,
          details: { host: badHost.slice(0, 200) },
        },
      };
    }
    const badOrigin = guard.refusedOrigin(req.headers.origin, req.headers['sec-fetch-site']);
    if (badOrigin === null) return null;
    return {
      audit: { origin: badOrigin.slice(0, 200) },
      shape: {
        code: 'FORBIDDEN',
        message: `Requests from the browser origin ${badOrigin.slice(0, 200)} are not allowed: the MCP endpoint refuses foreign origins (DNS rebinding protection).`,
        fix: `If a web page at that origin really should call Tunnel Manager, add it to \`mcp.allowedOrigins\` in the configuration (e.g. "https://dashboard.example.com") and restart; agents and the CLI send no Origin and need nothing, and pages on localhost, 127.0.0.1 or [::1] are allowed on a loopback listener.`,
        details: { origin: badOrigin.slice(0, 200) },
      },
    };
  }

  function touch(session: Session, res: ServerResponse): void {
    session.open += 1;
    session.lastSeen = Date.now();
    res.once('close', () => {
      session.open -= 1;
      session.lastSeen = Date.now();
    });
  }

  function closeSession(id: string, why: string): void {
    const session = sessions.get(id);
    if (!session) return;
    logger?.info({ project: session.principal.project, sessionId: id, why }, 'MCP session closed by the server');
    void session.transport.close().catch(() => undefined);
  }

  /** Beyond the cap, a project's least recently used sessions make room for its new one. */
  function enforceCap(project: string, keep: string): void {
    const own = [...sessions.entries()].filter(([id, session]) => session.principal.project === project && id !== keep);
    own.sort(([, a], [, b]) => a.open - b.open || a.lastSeen - b.lastSeen);
    for (const [id] of own.slice(0, Math.max(0, own.length + 1 - maxSessions))) closeSession(id, `more than ${maxSessions} sessions for ${project}`);
  }

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [id, session] of sessions) {
      if (session.open === 0 && now - session.lastSeen > idleMs) closeSession(id, `idle for more than ${Math.round(idleMs / 1000)} s`);
    }
  }, Math.min(60_000, Math.max(50, Math.floor(idleMs / 4))));
  sweeper.unref();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (closing) {
      sendError(res, 503, shuttingDown(shutdownGraceMs, 'request'), { connection: 'close', 'retry-after': '10' });
      return;
    }
    if (req.method === 'POST') {
      answering.add(res);
      res.once('close', () => answering.delete(res));
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== MCP_PATH) {
      sendError(res, 404, {
        code: 'INPUT_INVALID',
        message: `Nothing is served at ${url.pathname}.`,
        fix: `Point your MCP client at http://${options.host}:${boundPort}${MCP_PATH}.`,
        details: {},
      });
      return;
    }
    const refused = refusal(req);
    if (refused !== null) {
      denials.deny('unauthenticated', 'FORBIDDEN', req.socket.remoteAddress ?? null, refused.audit);
      sendError(res, 403, refused.shape);
      return;
    }
    const token = bearerToken(req);
    const principal = token === undefined ? undefined : directory.authenticate(token);
    if (!principal) {
      denials.deny('unauthenticated', 'UNAUTHENTICATED', req.socket.remoteAddress ?? null);
      sendError(
        res,
        401,
        {
          code: 'UNAUTHENTICATED',
          message: token === undefined ? 'The request has no bearer token.' : 'The bearer token is not valid for any project.',
          fix: 'Send `Authorization: Bearer <token>` with the token the meta-supervisor gave your project (its hash is in the configuration).',
          details: {},
        },
        { 'www-authenticate': 'Bearer realm="tunnel-manager"' },
      );
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId);
      if (!session) {
        sendError(res, 404, {
          code: 'INPUT_INVALID',
          message: `The MCP session ${sessionId} does not exist (it ended, or the service restarted).`,
          fix: 'Initialize a new session.',
          details: { sessionId },
        });
        return;
      }
      const notYours = sessionRefusal(principal, session.principal.project);
      if (notYours !== null) {
        denials.deny(principal.project, notYours.code, sessionId);
        sendError(res, 403, notYours);
        return;
      }
      touch(session, res);
      await session.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') {
      sendError(res, 400, {
        code: 'INPUT_INVALID',
        message: 'A request without an Mcp-Session-Id header must be a POST of an initialize request.',
        fix: 'Initialize a session first; then send its Mcp-Session-Id header with every request.',
        details: {},
      });
      return;
    }
    const mcp = createMcpServer({ principal, backend, callLimiter, inFlight, ...(logger ? { logger } : {}) });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      // Resumable streams: a client that reconnects with Last-Event-ID gets what it missed; SSE carries `retry`.
      eventStore: new SessionEventStore(),
      retryInterval: 2000,
      onsessioninitialized: (id) => {
        sessions.set(id, { principal, transport, mcp, lastSeen: Date.now(), open: 0 });
        logger?.info({ project: principal.project, sessionId: id }, 'MCP session opened');
        enforceCap(principal.project, id);
      },
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id && sessions.delete(id)) logger?.info({ project: principal.project, sessionId: id }, 'MCP session closed');
      mcp.dispose();
    };
    await mcp.server.connect(transport);
    await transport.handleRequest(req, res);
    if (!transport.sessionId) {
      // Not an initialize request: nothing to keep.
      mcp.dispose();
      await mcp.server.close();
    }
  }

  const http: HttpServer = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger?.error({ err: error }, 'MCP request failed');
      if (!res.headersSent) {
        sendError(res, 500, {
          code: 'INTERNAL',
          message: 'The MCP request failed unexpectedly.',
          fix: 'Retry; if it persists, check the service log.',
          details: {},
        });
      } else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  boundPort = (http.address() as AddressInfo).port;
  const url = `http://${hostInUrl}:${boundPort}${MCP_PATH}`;
  logger?.info({ url }, 'MCP server listening');

  return {
    url,
    port: boundPort,
    sessions: () => [...sessions.entries()].map(([sessionId, session]) => ({ sessionId, project: session.principal.project })),
    /**
     * A graceful stop: new requests are refused (503 SHUTTING_DOWN); the calls running get `shutdownGraceMs` to finish,
     * then each one still running is answered SHUTTING_DOWN; once those answers are written, every session and its
     * streams are closed, so no client (resumable ones included) waits on a session that is gone.
     */
    async close() {
      closing = true;
      clearInterval(sweeper);
      const left = await inFlight.settle(shutdownGraceMs);
      if (left > 0) {
        logger?.warn({ calls: left, graceMs: shutdownGraceMs }, 'stopping: answering the tool calls still running with SHUTTING_DOWN');
        inFlight.interruptAll(shuttingDown(shutdownGraceMs, 'call'));
      }
      await written(answering, 2000);
      denials.close();
      for (const session of sessions.values()) {
        await session.transport.close().catch(() => undefined);
      }
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
