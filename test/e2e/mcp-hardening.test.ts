import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { waitUntil } from '../helpers/cli.ts';
import { rawHttp } from '../helpers/raw-http.ts';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * The MCP listener under a browser's and a flood's attack, over real HTTP: foreign origins are refused (the spec's
 * DNS rebinding rule), sessions are capped per project and expire when idle, and unauthenticated floods cost an
 * audit row per minute and source, not a row each.
 */

let env: Awaited<ReturnType<typeof startTestService>>;
let url: string;
let tokens: Record<string, string>;
const ALLOWED = 'https://dashboard.example.com';
const IDLE_MS = 1500;

function initializeBody(id = 1): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
}

/** An initialize request over plain fetch: no notification stream is opened, so nothing keeps the session busy. */
async function initialize(token: string, headers: Record<string, string> = {}): Promise<{ status: number; sessionId: string | null; body: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: initializeBody(),
  });
  return { status: response.status, sessionId: response.headers.get('mcp-session-id'), body: await response.text() };
}

/** A ping on an existing session: 200 while it lives, 404 once it is gone. */
async function ping(token: string, sessionId: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-06-18',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  });
  await response.text();
  return response.status;
}

function unauthenticatedRows() {
  return env.service.backend.audit({ limit: 10_000, principal: 'unauthenticated' });
}

beforeAll(async () => {
  env = await startTestService({ mcp: { listen: '127.0.0.1:0', allowedOrigins: [ALLOWED], maxSessionsPerProject: 3 } }, { mcpSessionIdleMs: IDLE_MS });
  const info = env.service.sandboxInfo!;
  url = info.mcpUrl;
  tokens = info.tokens;
}, 60_000);

afterAll(async () => {
  await env?.stop();
});

/** An initialize request with exactly these headers, Host included (a browser under DNS rebinding, or another loopback name). */
async function initializeAs(token: string, headers: Record<string, string>): Promise<{ status: number; sessionId: string | null; body: string }> {
  const answer = await rawHttp(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: initializeBody(),
  });
  const sessionId = answer.headers['mcp-session-id'];
  return { status: answer.status, sessionId: typeof sessionId === 'string' ? sessionId : null, body: answer.body };
}

describe('Host', () => {
  it('a foreign Host (DNS rebinding) gets 403 with the error shape and no session, whatever its port', async () => {
    const port = new URL(url).port;
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example:${port}`]) {
      const answer = await initializeAs(tokens.consilio!, { host });
      expect(answer.status, host).toBe(403);
      expect(answer.sessionId).toBeNull();
      const error = (JSON.parse(answer.body) as { error: { code: string; message: string; fix: string; details: Record<string, unknown> } }).error;
      expect(error).toMatchObject({ code: 'FORBIDDEN', details: { host } });
      expect(error.fix).toContain(`:${port}/mcp`);
    }
  });

  it('localhost, 127.0.0.1 and [::1] are this loopback listener, on any port or none', async () => {
    const port = new URL(url).port;
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'localhost', 'LOCALHOST:1', `[::1]:${port}`, '[::1]']) {
      const answer = await initializeAs(tokens['shared-services']!, { host });
      expect(answer.status, `${host} ${answer.body}`).toBe(200);
      expect(answer.sessionId).not.toBeNull();
    }
  });
});

describe('Origin', () => {
  it('a valid token from a foreign origin, a null origin or a cross-site fetch gets 403 and no session', async () => {
    for (const headers of [{ origin: 'http://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'http://localhost.evil.example' }, { origin: 'file://' }]) {
      const answer = await initialize(tokens.consilio!, headers);
      expect(answer.status, JSON.stringify(headers)).toBe(403);
      expect(answer.sessionId).toBeNull();
      const error = (JSON.parse(answer.body) as { error: { code: string; fix: string } }).error;
      expect(error.code).toBe('FORBIDDEN');
      expect(error.fix).toContain('mcp.allowedOrigins');
    }
    expect(env.service.mcp!.sessions().filter((s) => s.project === 'consilio')).toEqual([]);
  });

  it('no Origin (agents, the CLI), the listener’s own origin, loopback origins on any port and a configured origin are served', async () => {
    const own = new URL(url).origin;
    // A page on another local port (the MCP Inspector's web UI) is a loopback origin too.
    const local = ['http://localhost:6274', 'http://127.0.0.1:1', 'http://[::1]:8080', 'http://localhost', 'https://127.0.0.1'].map((origin) => ({ origin }));
    for (const headers of [{}, { origin: own }, { origin: ALLOWED }, { origin: ALLOWED.toUpperCase() }, { 'sec-fetch-site': 'same-origin' }, ...local]) {
      const answer = await initialize(tokens.odin!, headers);
      expect(answer.status, `${JSON.stringify(headers)} ${answer.body}`).toBe(200);
      expect(answer.sessionId).not.toBeNull();
    }
  });
});

describe('sessions', () => {
  it('a project holds at most maxSessionsPerProject: a new one closes its least recently used', async () => {
    const opened: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const answer = await initialize(tokens.openhorizon!);
      expect(answer.status).toBe(200);
      opened.push(answer.sessionId!);
    }
    await waitUntil(() => env.service.mcp!.sessions().filter((s) => s.project === 'openhorizon').length === 3 || undefined, 5000, 'the cap to hold');
    const live = env.service.mcp!.sessions().filter((s) => s.project === 'openhorizon').map((s) => s.sessionId).sort();
    expect(live).toEqual(opened.slice(2).sort());
    expect(await ping(tokens.openhorizon!, opened[0]!)).toBe(404);
    // Another project's sessions are not touched by openhorizon's cap.
    expect(env.service.mcp!.sessions().some((s) => s.project === 'odin')).toBe(true);
  });

  it('an idle session expires; one with an open notification stream (the SDK client) stays', async () => {
    const listening: Client = await mcpClient(url, tokens['health-agent']!);
    try {
      const idle = await initialize(tokens['health-agent']!);
      expect(await ping(tokens['health-agent']!, idle.sessionId!)).toBe(200);
      await waitUntil(() => !env.service.mcp!.sessions().some((s) => s.sessionId === idle.sessionId) || undefined, 15_000, 'the idle session to expire');
      expect(await ping(tokens['health-agent']!, idle.sessionId!)).toBe(404);
      // The SDK client keeps a GET stream open, so it is in use however long it waits; it still answers.
      const status = await call(listening, 'tunnel_ping');
      expect(status.isError).toBe(false);
    } finally {
      await listening.close();
    }
  }, 30_000);
});

describe('unauthenticated floods', () => {
  it('300 requests without a valid token write one audit row so far, not 300', async () => {
    const before = unauthenticatedRows().length;
    const requests = Array.from({ length: 300 }, (_, i) =>
      fetch(url, {
        method: 'POST',
        headers: { ...(i % 2 === 0 ? { authorization: 'Bearer tmk_not-a-token-at-all-000000' } : {}), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: initializeBody(i),
      }).then(async (response) => {
        await response.text();
        return response.status;
      }),
    );
    const statuses = await Promise.all(requests);
    expect(new Set(statuses)).toEqual(new Set([401]));
    const rows = unauthenticatedRows().slice(0, unauthenticatedRows().length - before);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'mcp.connect', outcome: 'denied', errorCode: 'UNAUTHENTICATED', target: '127.0.0.1' });
  });
});

describe('resumable streams', () => {
  /** Reads SSE events from a response until `until` says stop; returns them as { id, data }. */
  async function readEvents(response: Response, until: (events: { id: string | null; data: string }[]) => boolean, timeoutMs: number) {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const events: { id: string | null; data: string }[] = [];
    let buffer = '';
    const deadline = Date.now() + timeoutMs;
    while (!until(events)) {
      if (Date.now() > deadline) throw new Error(`no matching SSE events within ${timeoutMs} ms: ${JSON.stringify(events).slice(0, 500)}`);
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (.*)$/m.exec(block)?.[1] ?? null;
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
        if (data !== '') events.push({ id, data });
      }
    }
    await reader.cancel();
    return events;
  }

  function openStream(token: string, sessionId: string, lastEventId?: string): Promise<Response> {
    return fetch(url, {
      method: 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'text/event-stream',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': '2025-06-18',
        ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
      },
    });
  }

  const kindOf = (data: string) => ((JSON.parse(data) as { params?: { data?: { kind?: string } } }).params?.data?.kind ?? '');

  /** tunnel_restart by the meta-supervisor; a refusal fails the test with its whole answer. */
  async function restarted(client: Awaited<ReturnType<typeof mcpClient>>): Promise<void> {
    const answer = await call(client, 'tunnel_restart');
    expect(answer.isError, JSON.stringify(answer.data)).toBe(false);
  }

  it('a client that reconnects with Last-Event-ID gets the notifications it missed, and none twice', async () => {
    const token = tokens['shared-services']!;
    const { sessionId } = await initialize(token);
    const ms = await mcpClient(url, tokens['meta-supervisor']!);
    try {
      const first = await openStream(token, sessionId!);
      expect(first.status).toBe(200);
      const reading = readEvents(first, (events) => events.some((e) => kindOf(e.data) === 'tunnel.restarted'), 20_000);
      await restarted(ms);
      const seen = await reading; // the stream is closed once tunnel.restarted arrived
      const lastSeen = seen.at(-1)!;
      expect(lastSeen.id).toMatch(/:\d+$/);

      // While disconnected: two more restarts, so two more tunnel.restarted are sent.
      await restarted(ms);
      await restarted(ms);
      const again = await openStream(token, sessionId!, lastSeen.id!);
      expect(again.status).toBe(200);
      const missed = await readEvents(again, (events) => events.filter((e) => kindOf(e.data) === 'tunnel.restarted').length >= 2, 20_000);
      const sequence = (id: string | null) => Number(id!.slice(id!.lastIndexOf(':') + 1));
      expect(missed.every((e) => sequence(e.id) > sequence(lastSeen.id))).toBe(true);
      expect(new Set(missed.map((e) => e.id)).size).toBe(missed.length);
      expect(missed.filter((e) => kindOf(e.data) === 'tunnel.restarted')).toHaveLength(2);
    } finally {
      await ms.close();
    }
  }, 60_000);
});
