import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { DENIAL_CODES } from '../../src/mcp/authorization.ts';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * The authorization matrix: every tool of tools/list × every principal (the meta-supervisor, project A = consilio,
 * project B = odin) × every kind of resource (A's route, B's route, an adopted route, or none), over real Streamable
 * HTTP against the sandboxed service. Each cell says exactly what must happen: `ok`, a refusal (FORBIDDEN,
 * ROUTE_NOT_OWNED, PORT_NOT_OWNED), or the data error of a call that got past authorization (PORT_TAKEN: the arguments
 * name a port a route still holds, so the call changes nothing). A handler that adds its own check, or drops one,
 * changes a cell and fails this test; a new tool without a row fails it too.
 */

type Principal = 'ms' | 'a' | 'b';
type ResourceName = 'routeA' | 'routeB' | 'adopted' | 'none';
/** `ok`, or the code of the error answered: a refusal (FORBIDDEN, ROUTE_NOT_OWNED, PORT_NOT_OWNED) or a data error. */
type Outcome = 'ok' | 'FORBIDDEN' | 'ROUTE_NOT_OWNED' | 'PORT_NOT_OWNED' | 'PORT_TAKEN';
/** The expected outcome for [ms, a, b]. */
type Cells = [Outcome, Outcome, Outcome];

interface Resource {
  hostname?: string;
  port?: number;
  project?: string;
}

interface Row {
  args: (resource: Resource) => Record<string, unknown>;
  /** Only the resources the tool can name; a tool that names none has a `none` column only. */
  cells: Partial<Record<ResourceName, Cells>>;
  /** A call that succeeds removes the resource: it is made again before the next call. */
  consumes?: boolean;
}

const EVERYONE: Cells = ['ok', 'ok', 'ok'];
const MS_ONLY: Cells = ['ok', 'FORBIDDEN', 'FORBIDDEN'];
/** A project's own things, for the meta-supervisor and that project only. */
const A_ONLY: Cells = ['ok', 'ok', 'FORBIDDEN'];
const B_ONLY: Cells = ['ok', 'FORBIDDEN', 'ok'];
/** The same, for calls on a port a route holds: let through, they answer PORT_TAKEN. */
const TAKEN_A: Cells = ['PORT_TAKEN', 'PORT_TAKEN', 'FORBIDDEN'];
const TAKEN_B: Cells = ['PORT_TAKEN', 'FORBIDDEN', 'PORT_TAKEN'];

const none = () => ({});

/** The table. Row order is the order of the calls (the route deletes last: they consume their routes). */
const MATRIX: Record<string, Row> = {
  tunnel_ping: { args: none, cells: { none: EVERYONE } },
  tunnel_get_status: { args: none, cells: { none: EVERYONE } },
  tunnel_get_metrics: { args: none, cells: { none: EVERYONE } },
  tunnel_list_domains: { args: none, cells: { none: EVERYONE } },
  tunnel_get_network_topology: { args: none, cells: { none: EVERYONE } },
  tunnel_get_events: { args: none, cells: { none: EVERYONE } },
  tunnel_get_audit: { args: none, cells: { none: MS_ONLY } },
  supervisor_inspect: { args: none, cells: { none: MS_ONLY } },
  tunnel_scan_orphans: { args: none, cells: { none: MS_ONLY } },
  // Back to the commit config.yml is at: nothing changes.
  tunnel_rollback_config: { args: () => ({ commit: lastCommit }), cells: { none: MS_ONLY } },
  tunnel_restart: { args: none, cells: { none: MS_ONLY } },
  tunnel_list_cnames: {
    args: (r) => ({ project: r.project }),
    cells: { routeA: A_ONLY, routeB: B_ONLY, adopted: ['ok', 'FORBIDDEN', 'FORBIDDEN'] },
  },
  port_list: {
    args: (r) => ({ project: r.project }),
    cells: { routeA: A_ONLY, routeB: B_ONLY, adopted: ['ok', 'FORBIDDEN', 'FORBIDDEN'] },
  },
  // The route's own port is allocated already: a call let through answers PORT_TAKEN and changes nothing. For the
  // adopted route's owner (no port named), the meta-supervisor allocates one of its own range.
  port_allocate: {
    args: (r) => ({ project: r.project, purpose: 'matrix', ...(r.port === undefined ? {} : { port: r.port }) }),
    cells: { routeA: TAKEN_A, routeB: TAKEN_B, adopted: ['ok', 'FORBIDDEN', 'FORBIDDEN'] },
  },
  // A route still targets the port: a call let through answers PORT_TAKEN and changes nothing.
  port_release: { args: (r) => ({ project: r.project, port: r.port }), cells: { routeA: TAKEN_A, routeB: TAKEN_B } },
  tunnel_check_connectivity: {
    args: (r) => ({ targetPort: r.port }),
    cells: { routeA: ['ok', 'ok', 'PORT_NOT_OWNED'], routeB: ['ok', 'PORT_NOT_OWNED', 'ok'] },
  },
  tunnel_recommend_config: {
    args: (r) => ({ targetPort: r.port }),
    cells: { routeA: ['ok', 'ok', 'PORT_NOT_OWNED'], routeB: ['ok', 'PORT_NOT_OWNED', 'ok'] },
  },
  // A route is for the caller's own project and only targets a port it holds: the meta-supervisor holds neither.
  tunnel_request_cname: {
    args: (r) => ({ subdomain: 'matrix-probe', targetPort: r.port, dryRun: true, publishAhead: true }),
    cells: { routeA: ['PORT_NOT_OWNED', 'ok', 'PORT_NOT_OWNED'], routeB: ['PORT_NOT_OWNED', 'PORT_NOT_OWNED', 'ok'] },
  },
  tunnel_delete_cname: {
    args: (r) => ({ hostname: r.hostname }),
    cells: {
      routeA: ['ok', 'ok', 'ROUTE_NOT_OWNED'],
      routeB: ['ok', 'ROUTE_NOT_OWNED', 'ok'],
      adopted: ['ok', 'ROUTE_NOT_OWNED', 'ROUTE_NOT_OWNED'],
    },
    consumes: true,
  },
};

const PRINCIPALS: Principal[] = ['ms', 'a', 'b'];
const PROJECT = { ms: 'meta-supervisor', a: 'consilio', b: 'odin' } as const;

let env: Awaited<ReturnType<typeof startTestService>>;
const clients = {} as Record<Principal, Client>;
const resources = {} as Record<ResourceName, Resource>;
/** The commit of config.yml after the last route was published. */
let lastCommit = '';

/** Publishes (again) the route of project `who` on its port, ahead of any service. */
async function publish(who: 'a' | 'b'): Promise<void> {
  const resource = resources[who === 'a' ? 'routeA' : 'routeB'];
  const subdomain = resource.hostname!.split('.')[0]!;
  const made = await call<{ commit: string }>(clients[who], 'tunnel_request_cname', { subdomain, targetPort: resource.port, publishAhead: true });
  expect(made.isError, JSON.stringify(made.data)).toBe(false);
  lastCommit = made.data.commit;
}

beforeAll(async () => {
  env = await startTestService();
  const { mcpUrl, tokens } = env.service.sandboxInfo!;
  for (const who of PRINCIPALS) clients[who] = await mcpClient(mcpUrl, tokens[PROJECT[who]]!);
  for (const [who, name] of [['a', 'routeA'], ['b', 'routeB']] as const) {
    const port = await call<{ port: number }>(clients[who], 'port_allocate', { purpose: 'authorization matrix' });
    expect(port.isError, JSON.stringify(port.data)).toBe(false);
    resources[name] = { hostname: `matrix-${who}.153.se`, port: port.data.port, project: PROJECT[who] };
    await publish(who);
  }
  // Adopted on the first start from the sandbox's Cloudflare account: owned by the meta-supervisor, no port.
  resources.adopted = { hostname: 'chat.153.se', project: 'meta-supervisor' };
  resources.none = {};
}, 90_000);

afterAll(async () => {
  await Promise.all(PRINCIPALS.map((who) => clients[who]?.close()));
  await env?.stop();
});

describe('the authorization matrix', () => {
  it('has a row for every tool the meta-supervisor sees in tools/list', async () => {
    const listed = (await clients.ms.listTools()).tools.map((tool) => tool.name).sort();
    expect(Object.keys(MATRIX).sort()).toEqual(listed);
  });

  it('answers every tool × principal × resource exactly as the table says', async () => {
    const actual: string[] = [];
    const expected: string[] = [];
    for (const [tool, row] of Object.entries(MATRIX)) {
      for (const [resourceName, cells] of Object.entries(row.cells) as [ResourceName, Cells][]) {
        // Refusals first: a consuming call that succeeds removes the resource the next principal would be refused on.
        const order = PRINCIPALS.map((who, index) => ({ who, want: cells[index]! })).sort((x, y) => Number(x.want === 'ok') - Number(y.want === 'ok'));
        for (const { who, want } of order) {
          const result = await call<{ code?: string; message?: string; fix?: string }>(clients[who], tool, row.args(resources[resourceName]));
          const got = result.isError ? (result.data.code ?? 'no code') : 'ok';
          const cell = `${tool} × ${who} × ${resourceName}`;
          actual.push(`${cell}: ${got}`);
          expected.push(`${cell}: ${want}`);
          if (DENIAL_CODES.has(got)) {
            // A refusal has the one error shape, with a fix.
            expect(result.data.message, cell).toBeTruthy();
            expect(result.data.fix, cell).toBeTruthy();
          }
          if (row.consumes && got === 'ok' && resourceName !== 'adopted') await publish(resourceName === 'routeA' ? 'a' : 'b');
        }
      }
    }
    expect(actual).toEqual(expected);
    // The routes the matrix deleted were made again; nothing refused removed anything.
    const routes = await call<{ routes: { hostname: string; status: string }[] }>(clients.ms, 'tunnel_list_cnames', {});
    const active = routes.data.routes.filter((route) => route.status === 'active').map((route) => route.hostname);
    expect(active).toEqual(expect.arrayContaining(['matrix-a.153.se', 'matrix-b.153.se']));
  }, 180_000);
});
