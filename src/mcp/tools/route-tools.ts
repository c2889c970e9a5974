import { z } from 'zod';
import type { Route } from '../../store/routes-repository.ts';
import { defineTool } from '../tool-definition.ts';
import { describedObject } from '../../contract/arguments.ts';
import { cnameRequestSchema, cnameResultSchema, deleteResultSchema, domainsSchema, orphanScanSchema } from '../../contract/routes.ts';


const routeSchema = describedObject(
  {
    hostname: z.string(),
    url: z.string(),
    project: z.string(),
    zone: z.string(),
    targetPort: z.number().nullable(),
    target: z.string().nullable(),
    reason: z.string().nullable(),
    status: z.enum(['pending', 'active', 'deleting', 'failed', 'adopted']),
    source: z.enum(['request', 'adopted']),
    expiresAt: z.string().nullable(),
    orphan: describedObject(
      { reason: z.enum(['project-removed', 'record-missing', 'port-unallocated']), since: z.string() },
      { reason: 'why the route lost its reason to exist (see tunnel_scan_orphans)', since: 'since when (ISO 8601)' },
    ).nullable(),
    awaitingServiceSince: z.string().nullable(),
    deleteRetry: describedObject(
      { attempts: z.number(), nextAt: z.string().nullable(), lastError: z.string().nullable() },
      {
        attempts: 'deletes of its DNS record that failed so far',
        nextAt: 'when the next one runs by itself (ISO 8601): seconds after the first failures, backing off to every 5 minutes; tunnel_delete_cname retries now',
        lastError: 'why the last one failed (`CODE: message`)',
      },
    ).nullable(),
    createdAt: z.string(),
  },
  {
    hostname: 'the public name, e.g. "app.153.se"',
    url: 'the public URL, e.g. "https://app.153.se"',
    project: 'the project that owns the route',
    zone: 'the Cloudflare zone the name is in',
    targetPort: 'the allocated port the route serves (null for an adopted route without one)',
    target: 'where cloudflared sends the traffic, e.g. "http://localhost:3100" or "http://web:3100"',
    reason: 'why that target was chosen',
    status: 'pending: being published; active: serving; deleting: being removed (or its DNS record is still to delete); failed; adopted: found in Cloudflare on first start',
    source: 'request: made by tunnel_request_cname; adopted: found pointing at the tunnel',
    expiresAt: 'when the route removes itself (ISO 8601), null for never',
    orphan: 'set when the orphan scan found the route without a reason to exist (tunnel_scan_orphans); null otherwise',
    awaitingServiceSince: 'set while a route published ahead of its service (publishAhead) waits for the service to answer: since when (ISO 8601); null otherwise',
    deleteRetry: 'set while a `deleting` route waits for its DNS record to be deleted (Cloudflare failed): the attempts, the next one and the last error; null otherwise',
    createdAt: 'when the route was created (ISO 8601)',
  },
);

export function routeView(route: Route) {
  return {
    hostname: route.hostname,
    url: `https://${route.hostname}`,
    project: route.project,
    zone: route.zoneName,
    targetPort: route.targetPort,
    target: route.service,
    reason: route.targetReason,
    status: route.status,
    source: route.source,
    expiresAt: route.expiresAt === null ? null : new Date(route.expiresAt).toISOString(),
    orphan: route.orphanReason === null ? null : { reason: route.orphanReason, since: new Date(route.orphanedSince ?? route.updatedAt).toISOString() },
    awaitingServiceSince: route.awaitingServiceSince === null ? null : new Date(route.awaitingServiceSince).toISOString(),
    deleteRetry:
      route.status === 'deleting' && route.requestId === null
        ? { attempts: route.deleteAttempts, nextAt: route.nextRetryAt === null ? null : new Date(route.nextRetryAt).toISOString(), lastError: route.lastError }
        : null,
    createdAt: new Date(route.createdAt).toISOString(),
  };
}

export const requestCname = defineTool({
  name: 'tunnel_request_cname',
  title: 'Publish a service',
  description:
    'Publishes https://<subdomain>.<domain> for one of your allocated ports: creates the DNS CNAME, adds the ingress rule with the target that works for your ' +
    'Docker setup, reloads the tunnel and records you as owner. Allocate the port first (port_allocate). dryRun: true returns the plan and changes nothing. ' +
    'The service must answer on the port first (checked from where cloudflared runs; else TARGET_NOT_ANSWERING, or publishAhead: true). ' +
    'On failure everything done so far is undone and the error says what to change.',
  input: cnameRequestSchema,
  output: cnameResultSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  access: 'any',
  auditTarget: (args) => `${args.subdomain}${args.domain ? `.${args.domain}` : ''}`,
  handler: (args, { backend, principal, progress, signal }) => backend.requestCname(principal, args, { ...(progress ? { progress } : {}), ...(signal ? { signal } : {}) }),
});

export const deleteCname = defineTool({
  name: 'tunnel_delete_cname',
  title: 'Unpublish a service',
  description:
    'Removes a route you own: its ingress rule (with a reload) and its DNS record (only a record tunnel-manager created), then the ledger entry. ' +
    'The meta-supervisor may remove any route.',
  input: z.object({ hostname: z.string().min(1).max(253).describe('e.g. "app.153.se"') }).strict(),
  output: deleteResultSchema,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  access: 'any',
  resource: (args) => ({ kind: 'route', hostname: args.hostname }),
  auditTarget: (args) => args.hostname,
  handler: (args, { backend, principal, progress }) => backend.deleteCname(principal, args.hostname, progress ? { progress } : {}),
});

export const listCnames = defineTool({
  name: 'tunnel_list_cnames',
  title: 'List routes',
  description:
    'Your routes in hostname order, a page at a time (a project supervisor sees its own; the meta-supervisor sees all and may filter by project). ' +
    'Pass the answer\'s `nextCursor` as `cursor` for the next page; it is null on the last one.',
  input: z
    .object({
      project: z.string().max(63).optional().describe('meta-supervisor only: filter by project'),
      limit: z.number().int().min(1).max(1000).default(100).describe('routes per page (default 100, at most 1000)'),
      cursor: z.string().max(253).optional().describe('the nextCursor of the previous page'),
    })
    .strict(),
  output: describedObject(
    { routes: z.array(routeSchema), count: z.number(), total: z.number(), nextCursor: z.string().nullable() },
    {
      routes: 'this page of routes, in hostname order',
      count: 'routes on this page',
      total: 'routes in all pages',
      nextCursor: 'pass as `cursor` for the next page; null on the last page',
    },
  ),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  resource: (args) => ({
    kind: 'project',
    project: args.project,
    mode: 'read',
    refusal: { doing: 'list the routes of', fix: 'Leave `project` out to list your own routes.' },
  }),
  handler: (args, { backend, project }) => {
    const page = backend.pageRoutes({ project, after: args.cursor ?? '', limit: args.limit });
    const routes = page.routes.map(routeView);
    const last = routes.at(-1);
    const more = last !== undefined && routes.length === args.limit && backend.pageRoutes({ project, after: last.hostname, limit: 1 }).routes.length > 0;
    return { routes, count: routes.length, total: page.total, nextCursor: more ? last.hostname : null };
  },
});

export const listDomains = defineTool({
  name: 'tunnel_list_domains',
  title: 'List domains',
  description: 'The zones of the Cloudflare account on which routes can be published; the default one is used when a request names no domain.',
  input: z.object({}).strict(),
  output: domainsSchema,
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { backend }) => ({ domains: backend.listDomains() }),
});

export const scanOrphans = defineTool({
  name: 'tunnel_scan_orphans',
  title: 'Find orphaned routes',
  description:
    'Runs the orphan scan now (it also runs at start and weekly): finds routes whose project left the configuration, whose DNS record no longer ' +
    'points at the tunnel, or whose port is no longer allocated to their project. Flags them (tunnel_list_cnames shows `orphan`) and tells each ' +
    'owner once (event route.orphaned). Only a removed project\'s routes are removed, after orphans.projectRemovedGraceHours; each finding says what to do.',
  input: z.object({}).strict(),
  output: orphanScanSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  access: 'ms',
  handler: async (_args, { backend }) => {
    const { at, ...result } = await backend.scanOrphans();
    return { scannedAt: new Date(at).toISOString(), ...result };
  },
});

export const ROUTE_TOOLS = [requestCname, deleteCname, listCnames, listDomains, scanOrphans];
