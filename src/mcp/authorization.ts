import type { McpBackend } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import { PROJECT_LABEL } from '../docker/service-location.ts';
import { TunnelManagerError, type ErrorShape } from '../errors.ts';
import type { EventRow } from '../store/events-repository.ts';

/**
 * Authorization, in one place: may this principal make this call on this resource? Every tool call and resource read
 * passes through `authorizeTool` (before its arguments are read) and `authorize` (with the resource its arguments
 * name), and the handler gets the decision (`Grant`); handlers and the backend decide nothing about who may act.
 * What the backend still refuses is about the data and holds for every caller alike: a name in the ledger or a
 * foreign DNS record is not taken over, a port is released only by the project that holds it.
 *
 * The rules:
 * - the meta-supervisor may do everything;
 * - a tool declared `access: 'ms'` is the meta-supervisor's alone (FORBIDDEN);
 * - a project supervisor acts for its own project only: naming another in `project` is FORBIDDEN;
 * - a route may be changed by its owner only (ROUTE_NOT_OWNED); adopted routes belong to the owner they were adopted for;
 * - a route targets only a port allocated to the project it is for, whoever asks (PORT_NOT_OWNED), when it is
 *   requested and when it is moved;
 * - a port's connectivity is checked by its project only (PORT_NOT_OWNED), or by the meta-supervisor;
 * - an MCP session is used by the project that opened it only (FORBIDDEN);
 * - the tunnel, the zones and the topology are read by everyone; events are read as `eventFor` says.
 */

/** What a call acts on, as the arguments name it. */
export type Resource =
  /** Nothing of a project's: the tunnel, the account's zones, the Docker topology. */
  | { kind: 'shared' }
  /**
   * A project's routes, ports or events. `project` as given (undefined: the caller's own; for the meta-supervisor in
   * `read` mode, every project). `refusal` words the FORBIDDEN answer for this call.
   */
  | { kind: 'project'; project: string | undefined; mode: 'act' | 'read'; refusal?: Refusal }
  /**
   * An existing route, by hostname as given (a name not in the ledger is the backend's ROUTE_NOT_FOUND). `targetPort`:
   * the port the call moves it to, which must be allocated to the route's owner, whoever calls (as for `target`).
   */
  | { kind: 'route'; hostname: string; targetPort?: number }
  /**
   * A port, by number. `target`: the port a route of the call's project will send traffic to, which must be allocated
   * to that project, whoever calls (the meta-supervisor's routes included: a route never targets another project's
   * port). `inspect`: a port looked at (connectivity, advice): a project supervisor's own, any for the meta-supervisor.
   */
  | { kind: 'port'; port: number; use: 'target' | 'inspect' };

/** How a refused `project` is worded: "<caller> may not <doing> <project>.", with the fix. */
export interface Refusal {
  doing: string;
  fix: string;
  details?: Record<string, unknown>;
}

/** What the policy decided. */
export interface Grant {
  /** The project the call is for (undefined: every project, for the meta-supervisor's reads and inspections). */
  project: string | undefined;
  /** The project a change is made for: `project`, or the caller's own when it reads every project. */
  actsFor: string;
}

/** What the policy reads about resources. */
export interface PolicyFacts {
  /** The owner of the route of that (lower-case) name, or undefined when the ledger has none. */
  routeOwner(hostname: string): string | undefined;
  /** Throws PORT_NOT_OWNED, with the call that fixes it, when the port is not allocated to the project. */
  assertPortOwned(project: string, port: number): void;
}

/** Error codes that mean "not yours": audited as `denied` rather than `error`. */
export const DENIAL_CODES: ReadonlySet<string> = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'ROUTE_NOT_OWNED', 'PORT_NOT_OWNED', 'PORT_OUT_OF_RANGE']);

const ACT_FOR: Refusal = { doing: 'act for', fix: 'Leave `project` out: your calls always act for your own project.' };

/** Who may call a tool at all, whatever its arguments (also what tools/list shows a principal). */
export function mayCall(role: Principal['role'], tool: { access: 'any' | 'ms' }): boolean {
  return tool.access !== 'ms' || role === 'ms';
}

/** Refuses a meta-supervisor tool to a project supervisor (FORBIDDEN), before its arguments are read. */
export function authorizeTool(principal: Principal, tool: { name: string; access: 'any' | 'ms' }): void {
  if (mayCall(principal.role, tool)) return;
  throw new TunnelManagerError({
    code: 'FORBIDDEN',
    message: `${tool.name} is for the meta-supervisor; ${principal.project} is a project supervisor.`,
    fix: 'Ask the meta-supervisor to do this, or use the tools for your own routes and ports.',
    details: { tool: tool.name, project: principal.project, role: principal.role },
  });
}

/** The grant for a call on the caller's own project. */
function own(principal: Principal): Grant {
  return { project: principal.project, actsFor: principal.project };
}

function decideProject(principal: Principal, resource: Extract<Resource, { kind: 'project' }>): Grant {
  const { project } = resource;
  const ms = principal.role === 'ms';
  if (project === undefined || project === principal.project) {
    return { project: ms && resource.mode === 'read' ? project : principal.project, actsFor: principal.project };
  }
  if (ms) return { project, actsFor: project };
  const refusal = resource.refusal ?? ACT_FOR;
  throw new TunnelManagerError({
    code: 'FORBIDDEN',
    message: `${principal.project} may not ${refusal.doing} ${project}.`,
    fix: refusal.fix,
    details: refusal.details ?? { project },
  });
}

/**
 * PORT_NOT_OWNED for a move to a port the route's project does not hold. The port manager words it for the owner
 * ("your range"); when someone else moves the route (the meta-supervisor), the fix names the owner's ports instead.
 */
function assertOwnersPort(principal: Principal, owner: string, port: number, facts: PolicyFacts): void {
  try {
    facts.assertPortOwned(owner, port);
  } catch (error) {
    if (owner === principal.project || !(error instanceof TunnelManagerError)) throw error;
    throw new TunnelManagerError({
      code: error.code,
      message: error.message,
      fix: `A route moves only to a port its own project holds: port_list { "project": "${owner}" } lists ${owner}'s ports, and port_allocate { "project": "${owner}", "port": ${port}, "purpose": "…" } allocates this one to ${owner} if it is in ${owner}'s range.`,
      details: { ...error.details, owner },
    });
  }
}

function decideRoute(principal: Principal, resource: Extract<Resource, { kind: 'route' }>, facts: PolicyFacts): Grant {
  const { hostname, targetPort } = resource;
  const owner = facts.routeOwner(hostname.toLowerCase());
  if (owner === undefined || owner === principal.project || principal.role === 'ms') {
    // A route moves only to a port its own project holds, whoever moves it (the meta-supervisor included).
    if (owner !== undefined && targetPort !== undefined) assertOwnersPort(principal, owner, targetPort, facts);
    return own(principal);
  }
  throw new TunnelManagerError({
    code: 'ROUTE_NOT_OWNED',
    message: `${hostname} belongs to ${owner}, not to ${principal.project}.`,
    fix: 'You can change or delete only your own routes (tunnel_list_cnames lists them). Ask the meta-supervisor if this one must change or go.',
    details: { hostname, owner },
  });
}

function decidePort(principal: Principal, resource: Extract<Resource, { kind: 'port' }>, facts: PolicyFacts): Grant {
  if (resource.use === 'inspect' && principal.role === 'ms') return { project: undefined, actsFor: principal.project };
  facts.assertPortOwned(principal.project, resource.port);
  return own(principal);
}

/** Decides a call on a resource: answers the grant, or throws the refusal with its fix. */
export function authorize(principal: Principal, resource: Resource, facts: PolicyFacts): Grant {
  switch (resource.kind) {
    case 'shared':
      return own(principal);
    case 'project':
      return decideProject(principal, resource);
    case 'route':
      return decideRoute(principal, resource, facts);
    case 'port':
      return decidePort(principal, resource, facts);
  }
}

/**
 * A request on an MCP session: a session belongs to the project that opened it, and is refused to another's token
 * (FORBIDDEN). Answers the refusal, or null when the caller may use the session.
 */
export function sessionRefusal(principal: Principal, sessionOwner: string): ErrorShape | null {
  if (principal.project === sessionOwner) return null;
  return { code: 'FORBIDDEN', message: 'This session belongs to another project.', fix: 'Use your own session: initialize one with your token.', details: {} };
}

/** A route a container declares by labels, for the project its label names (src/app/use-cases/label-routes.ts). */
export interface LabelRoute {
  container: string;
  hostname: string;
  port: number;
  project: string;
  /** The project already holds a route of that name on that port (asked for with the tool): it is honoured as it is. */
  held: boolean;
}

/** Who may declare routes by label: the configuration's `labels.projects`, and every project with its role. */
export interface LabelRules {
  labelProjects: ReadonlySet<string>;
  projects: ReadonlyMap<string, 'ps' | 'ms'>;
}

function labelRefusalReason(project: string, rules: LabelRules): string {
  if (!rules.projects.has(project)) return `there is no project named ${JSON.stringify(project.slice(0, 63))}`;
  if (rules.projects.get(project) === 'ms') return `${project} is the meta-supervisor, and labels never act for it`;
  return `${project} is not among the projects allowed to declare routes by label (labels.projects)`;
}

/**
 * A label route acts for the project its label names, as that project's supervisor would: only a project of
 * `labels.projects` (never the meta-supervisor), and only on a port allocated to it (PORT_NOT_OWNED, as for
 * tunnel_request_cname; a route it already holds is honoured as it is). Throws the refusal with its fix.
 */
export function authorizeLabelRoute(label: LabelRoute, rules: LabelRules, facts: PolicyFacts): void {
  const { container, hostname, port, project } = label;
  if (!rules.labelProjects.has(project)) {
    throw new TunnelManagerError({
      code: 'FORBIDDEN',
      message: `Container "${container}" asks for ${hostname} for ${project.slice(0, 63)}, but ${labelRefusalReason(project, rules)}; nothing was created.`,
      fix: `Label routes are for a project supervisor's own containers (allowed: ${[...rules.labelProjects].join(', ') || 'none'}): name your project in ${PROJECT_LABEL}, or publish with tunnel_request_cname; the operator chooses the projects with labels.projects.`,
      details: { container, hostname, port, project: project.slice(0, 63), allowed: [...rules.labelProjects] },
    });
  }
  if (!label.held) authorize({ project, role: 'ps' }, { kind: 'port', port, use: 'target' }, facts);
}

/** What the policy reads about resources, from the backend's ledger and port allocations. */
export function policyFacts(backend: Pick<McpBackend, 'findRoute' | 'ports'>): PolicyFacts {
  return {
    routeOwner: (hostname) => backend.findRoute(hostname)?.project,
    assertPortOwned: (project, port) => {
      backend.ports.assertOwned(project, port);
    },
  };
}

/** The `project` of an event that concerns everyone. */
export const BROADCAST = '*';

/** Fields of a broadcast event that never name a route, a hostname or a hand-written rule. */
const PUBLIC_FIELDS = new Set(['path', 'resolution', 'policy', 'failedCommit', 'zone']);

/**
 * What a project supervisor may read of a broadcast event that is not about the tunnel itself: the fields that name
 * nothing of anyone else, and the number of items in each list (a broken config.yml lists other projects' hostnames;
 * the meta-supervisor reads them whole).
 */
function publicView(event: EventRow): Record<string, unknown> {
  if (event.kind.startsWith('tunnel.')) return event.data; // the shared tunnel's state: pids, reasons, delays
  const view: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event.data)) {
    if (Array.isArray(value)) view[`${key}Count`] = value.length;
    else if (PUBLIC_FIELDS.has(key)) view[key] = value;
  }
  view.detail = 'The names involved are for the meta-supervisor; this event tells you that it happened.';
  return view;
}

/**
 * The one rule for who reads which event, for `tunnel_get_events`, the events a session is sent as they happen, and
 * anything else that shows events: the meta-supervisor reads every event; a project supervisor reads its own
 * project's events whole and broadcast events without other projects' data; nothing else.
 */
export function eventFor(principal: Principal, event: EventRow): EventRow | null {
  if (principal.role === 'ms' || event.project === principal.project) return event;
  if (event.project !== BROADCAST) return null;
  return { ...event, data: publicView(event) };
}
