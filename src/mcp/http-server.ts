import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
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
import { listenerGuard, type ListenerGuard } from '../listener-guard.ts';
import { NOT_AN_INITIALIZE, notServedHere, rebindingRefusal, REQUEST_FAILED, unauthenticated, unknownSession, type ListenerAddress } from './http-refusals.ts';
import { SessionTable } from './http-sessions.ts';
import { createMcpServer } from './server.ts';
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
    const next = open.values().next();
    if (next.done === true) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadline - Date.now());
      next.value.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * The listener's requests: each is refused or let through (shutdown, path, DNS rebinding, authentication), then goes
 * to its session (which must be the caller's: the policy's sessionRefusal) or opens one. One MCP server per session.
 */
class McpHttpListener {
  readonly sessions: SessionTable;
  readonly denials: DenialAudit;
  readonly inFlight = new CallsInFlight();
  /** POST requests whose answer is still being written (an interrupted call's answer must reach its client). */
  readonly answering = new Set<ServerResponse>();
  /** Set by close(): every new request is refused with SHUTTING_DOWN. */
  closing = false;
  readonly at: ListenerAddress;
  private readonly guard: ListenerGuard;
  private readonly callLimiter: ToolCallLimiter;

  constructor(private readonly options: McpHttpServerOptions) {
    this.sessions = new SessionTable(options.maxSessionsPerProject ?? 16, options.sessionIdleMs ?? 30 * 60_000, options.logger);
    this.denials = new DenialAudit((entry) => options.backend.recordAudit(entry));
    this.callLimiter = new ToolCallLimiter(options.toolCallsPerMinute ?? 0);
    this.guard = listenerGuard(options.host, options.allowedOrigins ?? []);
    this.at = { host: options.host, hostInUrl: options.host.includes(':') ? `[${options.host}]` : options.host, port: options.port, path: MCP_PATH };
  }

  get shutdownGraceMs(): number {
    return this.options.shutdownGraceMs ?? 5000;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const principal = this.admit(req, res);
    if (principal === null) return;
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') await this.continueSession(sessionId, principal, req, res);
    else if (req.method !== 'POST') sendError(res, 400, NOT_AN_INITIALIZE);
    else await this.openSession(principal, req, res);
  }

  /** The refusals before any session: stopping, another path, DNS rebinding, no valid token. Answers the caller, or null when refused. */
  private admit(req: IncomingMessage, res: ServerResponse): Principal | null {
    if (this.closing) {
      sendError(res, 503, shuttingDown(this.shutdownGraceMs, 'request'), { connection: 'close', 'retry-after': '10' });
      return null;
    }
    if (req.method === 'POST') {
      this.answering.add(res);
      res.once('close', () => this.answering.delete(res));
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== MCP_PATH) {
      sendError(res, 404, notServedHere(url.pathname, this.at));
      return null;
    }
    const refused = rebindingRefusal(req, this.guard, this.at);
    if (refused !== null) {
      this.denials.deny('unauthenticated', refused.shape.code, req.socket.remoteAddress ?? null, refused.audit);
      sendError(res, 403, refused.shape);
      return null;
    }
    const token = bearerToken(req);
    const principal = token === undefined ? undefined : this.options.directory.authenticate(token);
    if (principal) return principal;
    const shape = unauthenticated(token);
    this.denials.deny('unauthenticated', shape.code, req.socket.remoteAddress ?? null);
    sendError(res, 401, shape, { 'www-authenticate': 'Bearer realm="tunnel-manager"' });
    return null;
  }

  private async continueSession(sessionId: string, principal: Principal, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const session = this.sessions.get(sessionId);
    if (!session) {
      sendError(res, 404, unknownSession(sessionId));
      return;
    }
    const notYours = sessionRefusal(principal, session.principal.project);
    if (notYours !== null) {
      this.denials.deny(principal.project, notYours.code, sessionId);
      sendError(res, 403, notYours);
      return;
    }
    this.sessions.touch(session, res);
    await session.transport.handleRequest(req, res);
  }

  private async openSession(principal: Principal, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { backend, logger } = this.options;
    const mcp = createMcpServer({ principal, backend, callLimiter: this.callLimiter, inFlight: this.inFlight, ...(logger ? { logger } : {}) });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      // Resumable streams: a client that reconnects with Last-Event-ID gets what it missed; SSE carries `retry`.
      eventStore: new SessionEventStore(),
      retryInterval: 2000,
      onsessioninitialized: (id) => this.sessions.add(id, { principal, transport, mcp, lastSeen: Date.now(), open: 0 }),
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id) this.sessions.remove(id, principal.project);
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

  /**
   * A graceful stop: new requests are refused (503 SHUTTING_DOWN); the calls running get `shutdownGraceMs` to finish,
   * then each one still running is answered SHUTTING_DOWN; once those answers are written, every session and its
   * streams are closed, so no client (resumable ones included) waits on a session that is gone.
   */
  async stop(): Promise<void> {
    this.closing = true;
    this.sessions.stopSweeping();
    const left = await this.inFlight.settle(this.shutdownGraceMs);
    if (left > 0) {
      this.options.logger?.warn({ calls: left, graceMs: this.shutdownGraceMs }, 'stopping: answering the tool calls still running with SHUTTING_DOWN');
      this.inFlight.interruptAll(shuttingDown(this.shutdownGraceMs, 'call'));
    }
    await written(this.answering, 2000);
    this.denials.close();
    await this.sessions.closeAll();
  }
}

async function listen(http: HttpServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address();
  if (address === null || typeof address === 'string') throw new Error(`the MCP listener on ${host}:${port} has no TCP address`);
  return address.port;
}

/**
 * MCP over Streamable HTTP on a loopback address. The bearer token of every request decides the principal;
 * a session belongs to the principal that opened it, and a request with another project's token is refused.
 * One MCP server per session.
 */
export async function startMcpHttpServer(options: McpHttpServerOptions): Promise<McpHttpServer> {
  const { logger } = options;
  const listener = new McpHttpListener(options);
  const http: HttpServer = createServer((req, res) => {
    listener.handle(req, res).catch((error: unknown) => {
      logger?.error({ err: error }, 'MCP request failed');
      if (!res.headersSent) sendError(res, 500, REQUEST_FAILED);
      else res.end();
    });
  });
  const port = await listen(http, options.port, options.host);
  listener.at.port = port;
  const url = `http://${listener.at.hostInUrl}:${port}${MCP_PATH}`;
  logger?.info({ url }, 'MCP server listening');
  return {
    url,
    port,
    sessions: () => listener.sessions.list(),
    async close() {
      await listener.stop();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
