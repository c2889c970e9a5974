import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * The authorization matrix end to end, as a smoke: test/unit/mcp/authorization-matrix.test.ts decides every tool ×
 * caller × resource over the policy alone; this checks, over real Streamable HTTP against the sandboxed service, that
 * each kind of decision reaches a caller as the one error shape with a fix, leaves a `denied` audit row and changes
 * nothing, and that an allowed call gets through to the backend. One cell per kind of refusal.
 */

let env: Awaited<ReturnType<typeof startTestService>>;
let ms: Client;
let consilio: Client;
let odin: Client;
let odinPort = 0;

interface Answer {
  code?: string;
  message?: string;
  fix?: string;
}

beforeAll(async () => {
  env = await startTestService();
  const { mcpUrl, tokens } = env.service.sandboxInfo!;
  ms = await mcpClient(mcpUrl, tokens['meta-supervisor']!);
  consilio = await mcpClient(mcpUrl, tokens.consilio!);
  odin = await mcpClient(mcpUrl, tokens.odin!);
  const port = await call<{ port: number }>(odin, 'port_allocate', { purpose: 'authorization smoke' });
  expect(port.isError, JSON.stringify(port.data)).toBe(false);
  odinPort = port.data.port;
  const route = await call(odin, 'tunnel_request_cname', { subdomain: 'smoke-odin', targetPort: odinPort, publishAhead: true });
  expect(route.isError, JSON.stringify(route.data)).toBe(false);
}, 90_000);

afterAll(async () => {
  await Promise.all([ms, consilio, odin].map((client) => client?.close()));
  await env?.stop();
});

/** The last audit row of `project`. */
function lastAudit(project: string) {
  return env.service.backend.audit({ limit: 1, principal: project })[0];
}

describe('the authorization matrix over HTTP (smoke)', () => {
  it('answers each kind of refusal with the error shape, audits it as denied, and changes nothing', async () => {
    const cells: [Client, string, string, Record<string, unknown>, string][] = [
      [consilio, 'consilio', 'tunnel_restart', {}, 'FORBIDDEN'],
      [consilio, 'consilio', 'port_list', { project: 'odin' }, 'FORBIDDEN'],
      [consilio, 'consilio', 'tunnel_delete_cname', { hostname: 'smoke-odin.153.se' }, 'ROUTE_NOT_OWNED'],
      [consilio, 'consilio', 'tunnel_check_connectivity', { targetPort: odinPort }, 'PORT_NOT_OWNED'],
      [consilio, 'consilio', 'tunnel_request_cname', { subdomain: 'smoke-steal', targetPort: odinPort, dryRun: true }, 'PORT_NOT_OWNED'],
      // A route targets only a port of the project it is for: the meta-supervisor's included.
      [ms, 'meta-supervisor', 'tunnel_request_cname', { subdomain: 'smoke-steal', targetPort: odinPort, dryRun: true }, 'PORT_NOT_OWNED'],
    ];
    const before = await call<{ routes: unknown[] }>(ms, 'tunnel_list_cnames', {});
    for (const [client, project, tool, args, code] of cells) {
      const answer = await call<Answer>(client, tool, args);
      const cell = `${tool} by ${project}`;
      expect(answer.isError, cell).toBe(true);
      expect(answer.data.code, cell).toBe(code);
      expect(answer.data.message, cell).toBeTruthy();
      expect(answer.data.fix, cell).toBeTruthy();
      expect(lastAudit(project), cell).toMatchObject({ action: tool, outcome: 'denied', errorCode: code });
    }
    const after = await call<{ routes: unknown[] }>(ms, 'tunnel_list_cnames', {});
    expect(after.data.routes).toEqual(before.data.routes);
  }, 60_000);

  it('says which port and project a refused route names, as the port manager words it', async () => {
    const answer = await call<Answer & { details?: Record<string, unknown> }>(consilio, 'tunnel_request_cname', { subdomain: 'smoke-steal', targetPort: odinPort });
    let expected: unknown;
    try {
      env.service.backend.ports.assertOwned('consilio', odinPort);
    } catch (error) {
      expected = error;
    }
    expect(expected).toBeDefined();
    expect(answer.data).toMatchObject({ code: 'PORT_NOT_OWNED', message: (expected as Error).message });
  });

  it('lets the calls the policy allows reach the backend, for the decided project', async () => {
    expect((await call(odin, 'tunnel_check_connectivity', { targetPort: odinPort })).isError).toBe(false);
    expect((await call(ms, 'tunnel_check_connectivity', { targetPort: odinPort })).isError).toBe(false);
    const own = await call<{ routes: { hostname: string }[] }>(odin, 'tunnel_list_cnames', {});
    expect(own.data.routes.map((route) => route.hostname)).toEqual(['smoke-odin.153.se']);
    const deleted = await call(ms, 'tunnel_delete_cname', { hostname: 'smoke-odin.153.se' });
    expect(deleted.isError, JSON.stringify(deleted.data)).toBe(false);
  }, 60_000);
});
