import { describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/contract/principal.ts';
import { TunnelManagerError, toErrorShape } from '../../../src/errors.ts';
import { authorize, authorizeTool, DENIAL_CODES, type PolicyFacts } from '../../../src/mcp/authorization.ts';
import type { Tool } from '../../../src/mcp/tool-definition.ts';
import { ALL_TOOLS } from '../../../src/mcp/tools/index.ts';

/**
 * The authorization matrix, over the policy alone (in-process, no server): every tool × every caller (the
 * meta-supervisor, project A = consilio, project B = odin) × every kind of resource it can name (A's route and port,
 * B's, the adopted route of the meta-supervisor, or none). Each call goes the way the front end takes it
 * (src/mcp/tool-call.ts): `authorizeTool` before the arguments are read, the tool's own `prepare` (its schema and the
 * resource it declares), then `authorize` on that resource. A cell is the refusal's code, or `ok→P`: allowed, for the
 * project P the backend is then given (`*`: every project). A tool that declares another resource, or none, changes
 * a cell and fails here; a tool without a row fails too. test/e2e/authorization-matrix.test.ts checks the same
 * decisions reach a caller over real HTTP.
 */

type Caller = 'ms' | 'a' | 'b';
type ResourceName = 'routeA' | 'routeB' | 'adopted' | 'routeAToPortB' | 'none';
type Cells = [string, string, string];

interface Resource {
  hostname?: string;
  port?: number;
  project?: string;
}

const PRINCIPAL: Record<Caller, Principal> = {
  ms: { project: 'meta-supervisor', role: 'ms' },
  a: { project: 'consilio', role: 'ps' },
  b: { project: 'odin', role: 'ps' },
};

const RESOURCES: Record<ResourceName, Resource> = {
  routeA: { hostname: 'matrix-a.153.se', port: 3100, project: 'consilio' },
  routeB: { hostname: 'matrix-b.153.se', port: 3300, project: 'odin' },
  // Adopted on the first start: owned by the meta-supervisor, no port.
  adopted: { hostname: 'chat.153.se', project: 'meta-supervisor' },
  // A's route with B's port: moving a route to a port its project does not hold (tunnel_update_cname).
  routeAToPortB: { hostname: 'matrix-a.153.se', port: 3300, project: 'consilio' },
  none: {},
};

/** The ledger and the allocations of the world the table is about. */
const OWNER: Record<string, string> = { 'matrix-a.153.se': 'consilio', 'matrix-b.153.se': 'odin', 'chat.153.se': 'meta-supervisor' };
const ALLOCATED: Record<string, number[]> = { consilio: [3100], odin: [3300], 'meta-supervisor': [] };
const facts: PolicyFacts = {
  routeOwner: (hostname) => OWNER[hostname],
  assertPortOwned: (project, port) => {
    if (ALLOCATED[project]?.includes(port) === true) return;
    throw new TunnelManagerError({ code: 'PORT_NOT_OWNED', message: `Port ${port} is not allocated to ${project}.`, fix: 'port_allocate', details: { port, project } });
  },
};

/** Everyone, each for its own project. */
const OWN: Cells = ['ok→meta-supervisor', 'ok→consilio', 'ok→odin'];
const MS_ONLY: Cells = ['ok→meta-supervisor', 'FORBIDDEN', 'FORBIDDEN'];
/** Reads: the meta-supervisor reads every project's, a project supervisor its own. */
const READ_ALL: Cells = ['ok→*', 'ok→consilio', 'ok→odin'];
const FOR_A: Cells = ['ok→consilio', 'ok→consilio', 'FORBIDDEN'];
const FOR_B: Cells = ['ok→odin', 'FORBIDDEN', 'ok→odin'];
const FOR_MS: Cells = ['ok→meta-supervisor', 'FORBIDDEN', 'FORBIDDEN'];

const none = (): Record<string, unknown> => ({});

const MATRIX: Record<string, { args: (resource: Resource) => Record<string, unknown>; cells: Partial<Record<ResourceName, Cells>> }> = {
  tunnel_ping: { args: none, cells: { none: OWN } },
  tunnel_get_status: { args: none, cells: { none: OWN } },
  tunnel_get_metrics: { args: none, cells: { none: OWN } },
  tunnel_list_domains: { args: none, cells: { none: OWN } },
  tunnel_get_network_topology: { args: none, cells: { none: OWN } },
  tunnel_get_events: { args: none, cells: { none: READ_ALL } },
  tunnel_get_audit: { args: none, cells: { none: MS_ONLY } },
  supervisor_inspect: { args: none, cells: { none: MS_ONLY } },
  tunnel_scan_orphans: { args: none, cells: { none: MS_ONLY } },
  tunnel_rollback_config: { args: () => ({ commit: '3f7a6a1' }), cells: { none: MS_ONLY } },
  tunnel_restart: { args: none, cells: { none: MS_ONLY } },
  tunnel_list_cnames: { args: (r) => ({ project: r.project }), cells: { routeA: FOR_A, routeB: FOR_B, adopted: FOR_MS, none: READ_ALL } },
  port_list: { args: (r) => ({ project: r.project }), cells: { routeA: FOR_A, routeB: FOR_B, adopted: FOR_MS, none: READ_ALL } },
  port_allocate: { args: (r) => ({ project: r.project, purpose: 'matrix', ...(r.port === undefined ? {} : { port: r.port }) }), cells: { routeA: FOR_A, routeB: FOR_B, adopted: FOR_MS, none: OWN } },
  port_release: { args: (r) => ({ project: r.project, port: r.port }), cells: { routeA: FOR_A, routeB: FOR_B } },
  // Any port for the meta-supervisor (the backend gets no project), a project supervisor's own only.
  tunnel_check_connectivity: { args: (r) => ({ targetPort: r.port }), cells: { routeA: ['ok→*', 'ok→consilio', 'PORT_NOT_OWNED'], routeB: ['ok→*', 'PORT_NOT_OWNED', 'ok→odin'] } },
  tunnel_recommend_config: { args: (r) => ({ targetPort: r.port }), cells: { routeA: ['ok→*', 'ok→consilio', 'PORT_NOT_OWNED'], routeB: ['ok→*', 'PORT_NOT_OWNED', 'ok→odin'] } },
  // A route is for the caller's own project and only targets a port it holds: the meta-supervisor holds neither.
  tunnel_request_cname: {
    args: (r) => ({ subdomain: 'matrix-probe', targetPort: r.port, dryRun: true }),
    cells: { routeA: ['PORT_NOT_OWNED', 'ok→consilio', 'PORT_NOT_OWNED'], routeB: ['PORT_NOT_OWNED', 'PORT_NOT_OWNED', 'ok→odin'] },
  },
  // The route's owner or the meta-supervisor, and only to a port the route's project holds, whoever moves it.
  tunnel_update_cname: {
    args: (r) => ({ hostname: r.hostname, ...(r.port === undefined ? { originRequest: {} } : { targetPort: r.port }) }),
    cells: {
      routeA: ['ok→meta-supervisor', 'ok→consilio', 'ROUTE_NOT_OWNED'],
      routeB: ['ok→meta-supervisor', 'ROUTE_NOT_OWNED', 'ok→odin'],
      adopted: ['ok→meta-supervisor', 'ROUTE_NOT_OWNED', 'ROUTE_NOT_OWNED'],
      routeAToPortB: ['PORT_NOT_OWNED', 'PORT_NOT_OWNED', 'ROUTE_NOT_OWNED'],
    },
  },
  // One route: its owner or the meta-supervisor; no hostname: the caller's own routes (the meta-supervisor's: everyone's).
  tunnel_get_traffic: {
    args: (r) => (r.hostname === undefined ? {} : { hostname: r.hostname }),
    cells: {
      routeA: ['ok→meta-supervisor', 'ok→consilio', 'ROUTE_NOT_OWNED'],
      routeB: ['ok→meta-supervisor', 'ROUTE_NOT_OWNED', 'ok→odin'],
      adopted: ['ok→meta-supervisor', 'ROUTE_NOT_OWNED', 'ROUTE_NOT_OWNED'],
      none: READ_ALL,
    },
  },
  tunnel_delete_cname: {
    args: (r) => ({ hostname: r.hostname }),
    cells: {
      routeA: ['ok→meta-supervisor', 'ok→consilio', 'ROUTE_NOT_OWNED'],
      routeB: ['ok→meta-supervisor', 'ROUTE_NOT_OWNED', 'ok→odin'],
      adopted: ['ok→meta-supervisor', 'ROUTE_NOT_OWNED', 'ROUTE_NOT_OWNED'],
    },
  },
};

/** The policy's decision on one call, as the front end makes it. */
function decide(principal: Principal, tool: Tool, args: Record<string, unknown>): string {
  try {
    authorizeTool(principal, tool);
    const call = tool.prepare(args);
    if ('rejected' in call) return `arguments refused: ${call.rejected.message}`;
    return `ok→${authorize(principal, call.resource, facts).project ?? '*'}`;
  } catch (error) {
    const shape = toErrorShape(error);
    expect(DENIAL_CODES.has(shape.code), `${shape.code} is a denial`).toBe(true);
    expect(shape.fix, shape.code).toBeTruthy();
    return shape.code;
  }
}

describe('the authorization matrix (the policy, every tool × caller × resource)', () => {
  it('has a row for every tool', () => {
    expect(Object.keys(MATRIX).sort()).toEqual(ALL_TOOLS.map((tool) => tool.name).sort());
  });

  it('decides every cell as the table says', () => {
    const actual: string[] = [];
    const expected: string[] = [];
    for (const tool of ALL_TOOLS) {
      const row = MATRIX[tool.name];
      if (row === undefined) continue;
      for (const [resourceName, cells] of Object.entries(row.cells)) {
        const resource = RESOURCES[resourceName as ResourceName];
        (['ms', 'a', 'b'] as const).forEach((caller, index) => {
          const cell = `${tool.name} × ${caller} × ${resourceName}`;
          actual.push(`${cell}: ${decide(PRINCIPAL[caller], tool, row.args(resource))}`);
          expected.push(`${cell}: ${cells[index] ?? '(missing)'}`);
        });
      }
    }
    expect(actual).toEqual(expected);
  });
});
