import type { ServerResponse } from 'node:http';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Logger } from 'pino';
import type { Principal } from '../contract/principal.ts';
import type { McpSession } from './server.ts';

export interface Session {
  principal: Principal;
  transport: StreamableHTTPServerTransport;
  mcp: McpSession;
  /** When its last request started or ended. */
  lastSeen: number;
  /** Requests still open on it (a GET stream of notifications stays open): a session in use is never idle. */
  open: number;
}

/**
 * The open MCP sessions of the HTTP listener: at most `maxSessions` per project (beyond, its least recently used make
 * room), and none idle for longer than `idleMs` (a sweeper closes them).
 */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxSessions: number,
    private readonly idleMs: number,
    private readonly logger: Logger | undefined,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(50, Math.floor(idleMs / 4))));
    this.sweeper.unref();
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** A session that was just initialized: kept, and its project held to the cap. */
  add(id: string, session: Session): void {
    this.sessions.set(id, session);
    this.logger?.info({ project: session.principal.project, sessionId: id }, 'MCP session opened');
    this.enforceCap(session.principal.project, id);
  }

  /** A session whose transport closed. */
  remove(id: string, project: string): void {
    if (this.sessions.delete(id)) this.logger?.info({ project, sessionId: id }, 'MCP session closed');
  }

  /** A request on the session: it is in use until the response closes. */
  touch(session: Session, res: ServerResponse): void {
    session.open += 1;
    session.lastSeen = Date.now();
    res.once('close', () => {
      session.open -= 1;
      session.lastSeen = Date.now();
    });
  }

  list(): { sessionId: string; project: string }[] {
    return [...this.sessions.entries()].map(([sessionId, session]) => ({ sessionId, project: session.principal.project }));
  }

  /** Stops the sweeper and closes every session and its streams. */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    for (const session of this.sessions.values()) {
      await session.transport.close().catch(() => undefined);
    }
    this.sessions.clear();
  }

  stopSweeping(): void {
    clearInterval(this.sweeper);
  }

  private close(id: string, why: string): void {
    const session = this.sessions.get(id);
    if (!session) return;
    this.logger?.info({ project: session.principal.project, sessionId: id, why }, 'MCP session closed by the server');
    void session.transport.close().catch(() => undefined);
  }

  /** Beyond the cap, a project's least recently used sessions make room for its new one. */
  private enforceCap(project: string, keep: string): void {
    const own = [...this.sessions.entries()].filter(([id, session]) => session.principal.project === project && id !== keep);
    own.sort(([, a], [, b]) => a.open - b.open || a.lastSeen - b.lastSeen);
    for (const [id] of own.slice(0, Math.max(0, own.length + 1 - this.maxSessions))) this.close(id, `more than ${this.maxSessions} sessions for ${project}`);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, session] of this.sessions) {
      if (session.open === 0 && now - session.lastSeen > this.idleMs) this.close(id, `idle for more than ${Math.round(this.idleMs / 1000)} s`);
    }
  }
}
