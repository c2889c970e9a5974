import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { call, mcpClient, projectPorts, startTestService } from '../helpers/service.ts';

/**
 * Per-project identity over real Streamable HTTP: two project supervisors (consilio, odin) and the
 * meta-supervisor, each with its own bearer token from the sandbox. Every refusal is checked on the wire,
 * in the state it must not have changed, and in the audit log.
 */

interface ErrorData {
  code: string;
  message: string;
  fix: string;
  details: Record<string, unknown>;
}
interface AuditEntry {
  id: number;
  principal: string;
  action: string;
  target: string | null;
  outcome: string;
  errorCode: string | null;
  details: Record<string, unknown>;
}

let env: Awaited<ReturnType<typeof startTestService>>;
let consilio: Client;
let odin: Client;
let ms: Client;
let mcpUrl: string;
let tokens: Record<string, string>;
const HOST = 'perm.153.se';
let consilioPort: number;
let routeCommit: string;

function dnsNames(): string[] {
  const records = Object.values(env.service.sandbox!.emulator.state().records ?? {}).flat() as { name: string }[];
  return records.map((record) => record.name);
}

async function expectDenied(client: Client, tool: string, args: Record<string, unknown>, code: string): Promise<ErrorData> {
  const result = await call<ErrorData>(client, tool, args);
  expect(result.isError, `${tool} ${JSON.stringify(args)} should be refused`).toBe(true);
  expect(result.data.code).toBe(code);
  expect(result.data.message).toBeTruthy();
  expect(result.data.fix).toBeTruthy();
  expect(result.data.details).toBeTypeOf('object');
  return result.data;
}

async function auditOf(principal: string): Promise<AuditEntry[]> {
  const audit = await call<{ entries: AuditEntry[] }>(ms, 'tunnel_get_audit', { principal, limit: 1000 });
  expect(audit.isError, JSON.stringify(audit.data)).toBe(false);
  return audit.data.entries;
}

/** A raw JSON-RPC POST to the MCP endpoint, as a client without the SDK would send it. */
async function rawPost(headers: Record<string, string>, body: unknown): Promise<{ status: number; headers: Headers; json: unknown }> {
  const response = await fetch(mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, headers: response.headers, json };
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
};

beforeAll(async () => {
  env = await startTestService();
  const info = env.service.sandboxInfo!;
  mcpUrl = info.mcpUrl;
  tokens = info.tokens;
  consilio = await mcpClient(mcpUrl, tokens.consilio!);
  odin = await mcpClient(mcpUrl, tokens.odin!);
  ms = await mcpClient(mcpUrl, tokens['meta-supervisor']!);

  const allocated = await call<{ port: number }>(consilio, 'port_allocate', { purpose: 'permissions test' });
  expect(allocated.isError, JSON.stringify(allocated.data)).toBe(false);
  consilioPort = allocated.data.port;
  // Nothing listens on the port: this file is about the MCP surface, so the route is published ahead of its service.
  const route = await call<{ hostname: string; commit: string }>(consilio, 'tunnel_request_cname', { subdomain: 'perm', targetPort: consilioPort, publishAhead: true });
  expect(route.isError, JSON.stringify(route.data)).toBe(false);
  routeCommit = route.data.commit;
}, 60_000);

afterAll(async () => {
  await Promise.all([consilio?.close(), odin?.close(), ms?.close()]);
  await env?.stop();
});

describe('a project supervisor stays inside its own project', () => {
  it("cannot delete another project's route, and the route stays in the ledger, DNS and config.yml", async () => {
    const denied = await expectDenied(odin, 'tunnel_delete_cname', { hostname: HOST }, 'ROUTE_NOT_OWNED');
    expect(denied.details).toMatchObject({ owner: 'consilio' });
    // Upper case names the same route and is refused the same way.
    await expectDenied(odin, 'tunnel_delete_cname', { hostname: HOST.toUpperCase() }, 'ROUTE_NOT_OWNED');

    const all = await call<{ routes: { hostname: string; project: string; status: string }[] }>(ms, 'tunnel_list_cnames', { project: 'consilio' });
    expect(all.data.routes).toEqual([expect.objectContaining({ hostname: HOST, project: 'consilio', status: 'active' })]);
    expect(dnsNames()).toContain(HOST);
    expect(readFileSync(env.config.cloudflared.configPath, 'utf8')).toContain(`hostname: ${HOST}`);
  });

  it("cannot list another project's routes; its own list leaves them out", async () => {
    await expectDenied(odin, 'tunnel_list_cnames', { project: 'consilio' }, 'FORBIDDEN');
    const own = await call<{ routes: { hostname: string }[]; count: number }>(odin, 'tunnel_list_cnames');
    expect(own.isError).toBe(false);
    expect(own.data.routes.map((r) => r.hostname)).not.toContain(HOST);
    expect(own.data.count).toBe(own.data.routes.length);
    const mine = await call<{ routes: { hostname: string }[] }>(consilio, 'tunnel_list_cnames', { project: 'consilio' });
    expect(mine.data.routes.map((r) => r.hostname)).toEqual([HOST]);
  });

  it("cannot release, list or allocate another project's ports, nor act for it with `project`", async () => {
    const notOwned = await expectDenied(odin, 'port_release', { port: consilioPort }, 'PORT_NOT_OWNED');
    expect(notOwned.details).toMatchObject({ port: consilioPort, project: 'odin' });
    await expectDenied(odin, 'port_release', { port: consilioPort, project: 'consilio' }, 'FORBIDDEN');
    await expectDenied(odin, 'port_list', { project: 'consilio' }, 'FORBIDDEN');
    await expectDenied(odin, 'port_allocate', { purpose: 'steal', project: 'consilio' }, 'FORBIDDEN');
    const outOfRange = await expectDenied(odin, 'port_allocate', { purpose: 'steal', port: consilioPort + 1 }, 'PORT_OUT_OF_RANGE');
    const [odinFrom, odinTo] = projectPorts(env.config, 'odin');
    expect(outOfRange.fix).toContain(`${odinFrom} to ${odinTo}`);
    // The project of a CNAME comes from the token, never from the arguments.
    const smuggled = await call<ErrorData>(odin, 'tunnel_request_cname', { subdomain: 'smuggled', targetPort: consilioPort, project: 'consilio' });
    expect(smuggled).toMatchObject({ isError: true, data: { code: 'INPUT_INVALID' } });
    expect(smuggled.data.message).toContain('project');

    const consilioPorts = await call<{ allocations: { port: number; project: string }[] }>(ms, 'port_list', { project: 'consilio' });
    expect(consilioPorts.data.allocations).toEqual([expect.objectContaining({ port: consilioPort, project: 'consilio' })]);
    const odinPorts = await call<{ allocations: unknown[]; range: { from: number; to: number } }>(odin, 'port_list');
    expect(odinPorts.data).toMatchObject({ allocations: [], range: { from: odinFrom, to: odinTo } });
    expect(dnsNames()).not.toContain('smuggled.153.se');
  });

  it("cannot point a route at a port it does not own: PORT_NOT_OWNED with a fix naming port_allocate", async () => {
    const foreign = await expectDenied(odin, 'tunnel_request_cname', { subdomain: 'hijack', targetPort: consilioPort }, 'PORT_NOT_OWNED');
    expect(foreign.fix).toContain('port_allocate');
    expect(foreign.details).toMatchObject({ port: consilioPort, project: 'odin' });
    // In its own range but not allocated: the fix names the exact call.
    const odinPort = projectPorts(env.config, 'odin')[0] + 5;
    const unallocated = await expectDenied(odin, 'tunnel_request_cname', { subdomain: 'hijack', targetPort: odinPort }, 'PORT_NOT_OWNED');
    expect(unallocated.fix).toContain(`port_allocate { "port": ${odinPort}`);
    // Even the dry run is refused: the plan must be one that could work.
    await expectDenied(odin, 'tunnel_request_cname', { subdomain: 'hijack', targetPort: consilioPort, dryRun: true }, 'PORT_NOT_OWNED');

    const routes = await call<{ routes: { hostname: string }[] }>(ms, 'tunnel_list_cnames');
    expect(routes.data.routes.map((r) => r.hostname)).not.toContain('hijack.153.se');
    expect(dnsNames()).not.toContain('hijack.153.se');
    expect(readFileSync(env.config.cloudflared.configPath, 'utf8')).not.toContain('hijack');
  });

  it('cannot call the meta-supervisor tools', async () => {
    for (const [tool, args] of [
      ['tunnel_restart', {}],
      ['tunnel_rollback_config', { commit: routeCommit }],
      ['tunnel_get_audit', {}],
      ['supervisor_inspect', {}],
      ['tunnel_scan_orphans', {}],
    ] as const) {
      const denied = await expectDenied(consilio, tool, args, 'FORBIDDEN');
      expect(denied.details).toMatchObject({ tool, project: 'consilio', role: 'ps' });
    }
    // tools/list shows a project only what it may call; the meta-supervisor sees its own tools marked as such.
    const listed = (await consilio.listTools()).tools.map((tool) => tool.name);
    for (const tool of ['tunnel_restart', 'tunnel_rollback_config', 'tunnel_get_audit', 'supervisor_inspect', 'tunnel_scan_orphans']) expect(listed).not.toContain(tool);
    expect(listed).toContain('tunnel_request_cname');
    const restart = (await ms.listTools()).tools.find((tool) => tool.name === 'tunnel_restart');
    expect(restart?.description).toContain('meta-supervisor only');
  });

  it("cannot read or subscribe to another project's routes resource; the refusal carries the error shape", async () => {
    const own = await odin.readResource({ uri: 'tunnel://routes/odin' });
    expect(JSON.parse((own.contents[0] as { text: string }).text)).toMatchObject({ project: 'odin', routes: [] });

    for (const attempt of [() => odin.readResource({ uri: 'tunnel://routes/consilio' }), () => odin.subscribeResource({ uri: 'tunnel://routes/consilio' })]) {
      const error = await attempt().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(McpError);
      expect((error as McpError).message).toMatch(/^MCP error -32600: FORBIDDEN: odin may not read the routes of consilio\./);
      expect((error as McpError).data).toMatchObject({ code: 'FORBIDDEN', fix: expect.stringContaining('tunnel://routes/odin') });
    }
    const resources = await odin.listResources();
    expect(resources.resources.map((r) => r.uri)).toEqual(['tunnel://status', 'tunnel://routes/odin']);
  });
});

describe('the meta-supervisor may do all of it', () => {
  it("lists, allocates and releases for any project, and reads any project's routes", async () => {
    const routes = await call<{ routes: { hostname: string; project: string }[] }>(ms, 'tunnel_list_cnames', { project: 'consilio' });
    expect(routes.data.routes).toEqual([expect.objectContaining({ hostname: HOST, project: 'consilio' })]);
    const allRoutes = await call<{ routes: { hostname: string }[] }>(ms, 'tunnel_list_cnames');
    expect(allRoutes.data.routes.map((r) => r.hostname)).toContain(HOST);

    const ports = await call<{ allocations: { port: number }[]; range: { from: number; to: number } }>(ms, 'port_list', { project: 'consilio' });
    const [consilioFrom, consilioTo] = projectPorts(env.config, 'consilio');
    expect(ports.data).toMatchObject({ range: { from: consilioFrom, to: consilioTo }, allocations: [expect.objectContaining({ port: consilioPort })] });
    const [odinFirst] = projectPorts(env.config, 'odin');
    const allocated = await call<{ port: number; project: string }>(ms, 'port_allocate', { purpose: 'for odin', project: 'odin' });
    expect(allocated.data).toMatchObject({ port: odinFirst, project: 'odin' });
    const seenByOdin = await call<{ allocations: { port: number }[] }>(odin, 'port_list');
    expect(seenByOdin.data.allocations.map((a) => a.port)).toEqual([odinFirst]);
    const released = await call<{ released: boolean }>(ms, 'port_release', { port: odinFirst, project: 'odin' });
    expect(released.data).toEqual({ port: odinFirst, released: true });
    expect((await call<{ allocations: unknown[] }>(odin, 'port_list')).data.allocations).toEqual([]);

    const resource = await ms.readResource({ uri: 'tunnel://routes/consilio' });
    const body = JSON.parse((resource.contents[0] as { text: string }).text) as { project: string; routes: { hostname: string }[] };
    expect(body.routes.map((r) => r.hostname)).toEqual([HOST]);
    // The same view as tunnel_list_cnames, not the ledger's internal row.
    expect(body.routes[0]).toEqual(routes.data.routes[0]);
    const listed = await ms.listResources();
    expect(listed.resources.map((r) => r.uri)).toEqual(expect.arrayContaining(['tunnel://status', 'tunnel://routes/consilio', 'tunnel://routes/meta-supervisor']));
  });

  it('inspects, reads the audit log, rolls the config back and restarts the tunnel', async () => {
    const inspect = await call<{ actors: { path: string }[] }>(ms, 'supervisor_inspect', { limit: 5 });
    expect(inspect.isError, JSON.stringify(inspect.data)).toBe(false);
    expect(inspect.data.actors.map((a) => a.path)).toContain('supervisor/tunnel');

    const rollback = await call<{ commit: string; reloaded: boolean }>(ms, 'tunnel_rollback_config', { commit: routeCommit });
    expect(rollback.isError, JSON.stringify(rollback.data)).toBe(false);
    expect(rollback.data.commit).toBe(routeCommit);
    expect(readFileSync(env.config.cloudflared.configPath, 'utf8')).toContain(`hostname: ${HOST}`);

    const before = await call<{ restartCount: number }>(ms, 'tunnel_get_status');
    const restart = await call<{ state: string; restartCount: number; pid: number | null }>(ms, 'tunnel_restart');
    expect(restart.isError, JSON.stringify(restart.data)).toBe(false);
    expect(restart.data.state).toMatch(/^running\./);
    expect(restart.data.restartCount).toBeGreaterThan(before.data.restartCount);
  }, 60_000);

  it("deletes another project's route", async () => {
    const deleted = await call<{ deleted: boolean }>(ms, 'tunnel_delete_cname', { hostname: HOST });
    expect(deleted.isError, JSON.stringify(deleted.data)).toBe(false);
    expect(deleted.data.deleted).toBe(true);
    expect((await call<{ routes: unknown[] }>(consilio, 'tunnel_list_cnames')).data.routes).toEqual([]);
    expect(dnsNames()).not.toContain(HOST);
    expect(readFileSync(env.config.cloudflared.configPath, 'utf8')).not.toContain(HOST);
  }, 60_000);
});

describe('every denial is in the audit log', () => {
  it("has each of odin's and consilio's refusals with outcome `denied` and its code", async () => {
    const odinRows = (await auditOf('odin')).filter((row) => row.outcome === 'denied').map((row) => [row.action, row.errorCode]);
    expect(odinRows).toEqual(
      expect.arrayContaining([
        ['tunnel_delete_cname', 'ROUTE_NOT_OWNED'],
        ['tunnel_list_cnames', 'FORBIDDEN'],
        ['port_release', 'PORT_NOT_OWNED'],
        ['port_release', 'FORBIDDEN'],
        ['port_list', 'FORBIDDEN'],
        ['port_allocate', 'FORBIDDEN'],
        ['port_allocate', 'PORT_OUT_OF_RANGE'],
        ['tunnel_request_cname', 'PORT_NOT_OWNED'],
        ['resources/read', 'FORBIDDEN'],
        ['resources/subscribe', 'FORBIDDEN'],
      ]),
    );
    const deleteRow = (await auditOf('odin')).find((row) => row.action === 'tunnel_delete_cname');
    expect(deleteRow?.target?.toLowerCase()).toBe(HOST);
    expect(deleteRow?.details).toEqual({ hostname: deleteRow?.target, owner: 'consilio' });

    const consilioRows = (await auditOf('consilio')).filter((row) => row.outcome === 'denied').map((row) => [row.action, row.errorCode]);
    expect(consilioRows).toEqual(
      expect.arrayContaining([
        ['tunnel_restart', 'FORBIDDEN'],
        ['tunnel_rollback_config', 'FORBIDDEN'],
        ['tunnel_get_audit', 'FORBIDDEN'],
        ['supervisor_inspect', 'FORBIDDEN'],
        ['tunnel_scan_orphans', 'FORBIDDEN'],
      ]),
    );
    // The meta-supervisor's own calls are there too, allowed.
    const msRows = await auditOf('meta-supervisor');
    expect(msRows.filter((row) => row.outcome === 'ok').map((row) => row.action)).toEqual(
      expect.arrayContaining(['tunnel_restart', 'tunnel_rollback_config', 'tunnel_delete_cname', 'port_allocate', 'port_release', 'supervisor_inspect']),
    );
  });
});

describe('HTTP authentication', () => {
  it('answers 401 with the error shape to a request without a token or with a wrong one, and audits it', async () => {
    const before = (await auditOf('unauthenticated')).length;
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer tmk_not-a-real-token' }, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: `Bearer ${tokens.odin}x` }]) {
      const response = await rawPost(headers, INITIALIZE);
      expect(response.status, JSON.stringify(headers)).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expect(response.json).toEqual({
        error: { code: 'UNAUTHENTICATED', message: expect.any(String), fix: expect.stringContaining('Authorization: Bearer'), details: {} },
      });
    }
    // Audited once per minute and address: the first denial at once, repeats summed up when the minute ends.
    const rows = await auditOf('unauthenticated');
    expect(rows.length - before).toBeLessThanOrEqual(1);
    expect(rows[0]).toMatchObject({ outcome: 'denied', errorCode: 'UNAUTHENTICATED', action: 'mcp.connect', target: '127.0.0.1' });
  });

  it('refuses (403) a session opened with one project’s token when it is used with another’s, and audits it', async () => {
    const sessionId = (consilio.transport as { sessionId?: string } | undefined)?.sessionId;
    expect(sessionId).toBeTruthy();
    const toolCall = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'tunnel_list_cnames', arguments: {} } };
    const hijack = await rawPost({ authorization: `Bearer ${tokens.odin}`, 'mcp-session-id': sessionId!, 'mcp-protocol-version': '2025-06-18' }, toolCall);
    expect(hijack.status).toBe(403);
    expect(hijack.json).toMatchObject({ error: { code: 'FORBIDDEN', message: expect.any(String), fix: expect.any(String), details: {} } });
    const rows = await auditOf('odin');
    expect(rows[0]).toMatchObject({ action: 'mcp.connect', outcome: 'denied', errorCode: 'FORBIDDEN', target: sessionId });

    // The owner's session still works.
    expect((await call(consilio, 'tunnel_ping')).data).toMatchObject({ pong: true, project: 'consilio' });
  });
});

describe('tunnel_request_cname with dryRun', () => {
  it('answers the plan and changes nothing: no ledger row, no DNS record, config.yml unchanged, no event', async () => {
    const configBefore = readFileSync(env.config.cloudflared.configPath, 'utf8');
    const recordsBefore = JSON.stringify(env.service.sandbox!.emulator.state().records);
    const eventsBefore = await call<{ nextCursor: number }>(ms, 'tunnel_get_events', { cursor: 0, limit: 500 });

    const plan = await call<{ dryRun: boolean; plan: string[]; hostname: string; target: string; reason: string; timings: unknown[]; dnsRecordId: string | null; commit: string | null }>(
      consilio,
      'tunnel_request_cname',
      { subdomain: 'dry', targetPort: consilioPort, dryRun: true, publishAhead: true },
    );
    expect(plan.isError, JSON.stringify(plan.data)).toBe(false);
    expect(plan.data).toMatchObject({ dryRun: true, hostname: 'dry.153.se', target: `http://localhost:${consilioPort}`, timings: [], dnsRecordId: null, commit: null });
    expect(plan.data.reason).toBeTruthy();
    expect(plan.data.plan.length).toBeGreaterThanOrEqual(3);
    expect(plan.data.plan.join('\n')).toContain('dry.153.se');

    const routes = await call<{ routes: { hostname: string }[] }>(ms, 'tunnel_list_cnames');
    expect(routes.data.routes.map((r) => r.hostname)).not.toContain('dry.153.se');
    expect(JSON.stringify(env.service.sandbox!.emulator.state().records)).toBe(recordsBefore);
    expect(readFileSync(env.config.cloudflared.configPath, 'utf8')).toBe(configBefore);
    const eventsAfter = await call<{ events: unknown[] }>(ms, 'tunnel_get_events', { cursor: eventsBefore.data.nextCursor });
    expect(eventsAfter.data.events.filter((e) => JSON.stringify(e).includes('dry.153.se'))).toEqual([]);
  });
});
