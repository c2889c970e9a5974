import { TunnelManagerError } from '../errors.ts';
import type { EventRow } from '../store/events-repository.ts';
import type { McpBackend } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import { authorize, type PolicyFacts } from './authorization.ts';
import { routeView } from '../contract/route-view.ts';

/**
 * Subscribable resources: `tunnel://status` (everyone) and `tunnel://routes/{project}` (that project and the MS).
 * Subscribers get `notifications/resources/updated` when an event touches them.
 */
export const STATUS_URI = 'tunnel://status';
const ROUTES_PREFIX = 'tunnel://routes/';

export const RESOURCE_TEMPLATES = [
  {
    uriTemplate: `${ROUTES_PREFIX}{project}`,
    name: 'routes of a project',
    description: "A project's routes (hostname, target, status). A project supervisor may read only its own.",
    mimeType: 'application/json',
  },
];

export function routesUri(project: string): string {
  return `${ROUTES_PREFIX}${project}`;
}

export function resourceUrisFor(principal: Principal, backend: McpBackend, facts: PolicyFacts): string[] {
  // Every project's, for a principal the policy lets read them all; else its own.
  const { project } = authorize(principal, { kind: 'project', project: undefined, mode: 'read' }, facts);
  const projects = new Set([principal.project]);
  if (project === undefined) for (const route of backend.listRoutes({})) projects.add(route.project);
  return [STATUS_URI, ...[...projects].sort().map(routesUri)];
}

export function readResource(uri: string, principal: Principal, backend: McpBackend, facts: PolicyFacts): unknown {
  if (uri === STATUS_URI) return backend.status();
  if (uri.startsWith(ROUTES_PREFIX)) {
    const named = uri.slice(ROUTES_PREFIX.length);
    const refusal = { doing: 'read the routes of', fix: `Read ${routesUri(principal.project)} instead.`, details: { uri } };
    const project = authorize(principal, { kind: 'project', project: named, mode: 'act', refusal }, facts).project ?? named;
    return { project, routes: backend.listRoutes({ project }).map(routeView) };
  }
  throw new TunnelManagerError({
    code: 'RESOURCE_NOT_FOUND',
    message: `There is no resource ${uri}.`,
    fix: `Use ${STATUS_URI} or ${ROUTES_PREFIX}<project>.`,
    details: { uri },
  });
}

/** Which resources an event changes. */
export function resourcesAffectedBy(event: EventRow): string[] {
  if (event.kind.startsWith('tunnel.')) return [STATUS_URI];
  if (event.kind.startsWith('route.') && event.project !== '*') return [routesUri(event.project), STATUS_URI];
  return [];
}
