import { z } from 'zod';
import { TunnelManagerError } from '../../errors.ts';
import type { Route } from '../../store/routes-repository.ts';
import { defineTool } from '../tool-definition.ts';
import { describedObject, portArgument as port } from './arguments.ts';


/** Per-route origin settings cloudflared accepts; anything else is refused. */
const originRequest = z
  .object({
    connectTimeout: z.string().regex(/^\d+(ms|s|m)$/, 'a duration such as 30s').optional().describe('how long cloudflared waits to connect to your service, e.g. "30s" or "500ms" (default 30s)'),
    noTLSVerify: z.boolean().optional().describe('true: accept a self-signed certificate from an https:// service (default false)'),
    httpHostHeader: z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'a host name').optional().describe('the Host header sent to your service instead of the public name, e.g. "localhost"'),
    originServerName: z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'a host name').optional().describe("the TLS server name to expect from an https:// service, e.g. \"app.internal\""),
    http2Origin: z.boolean().optional().describe('true: speak HTTP/2 to your service (default false)'),
  })
  .strict()
  .describe('optional per-route settings for how cloudflared talks to your service; leave out for the defaults');

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
    createdAt: new Date(route.createdAt).toISOString(),
  };
}

const timings = z
  .array(describedObject({ step: z.string(), ms: z.number() }, { step: 'the saga step, e.g. dns, ingress, tunnelReady', ms: 'how long it took, in milliseconds' }))
  .describe('each step of the request and its time, in order');

export const requestCname = defineTool({
  name: 'tunnel_request_cname',
  title: 'Publish a service',
  description:
    'Publishes https://<subdomain>.<domain> for one of your allocated ports: creates the DNS CNAME, adds the ingress rule with the target that works for your ' +
    'Docker setup, reloads the tunnel and records you as owner. Allocate the port first (port_allocate). dryRun: true returns the plan and changes nothing. ' +
    'The service must answer on the port first (checked from where cloudflared runs; else TARGET_NOT_ANSWERING, or publishAhead: true). ' +
    'On failure everything done so far is undone and the error says what to change.',
  input: z
    .object({
      subdomain: z.string().max(253, 'at most 253 characters').describe('e.g. "app" or "api.staging"'),
      domain: z.string().max(253).optional().describe('a zone of the account (tunnel_list_domains); default: the default zone'),
      targetPort: port.describe('a port allocated to you'),
      originRequest: originRequest.optional(),
      expiresInSeconds: z
        .number()
        .int()
        .min(60, 'at least 60 seconds')
        .max(366 * 24 * 3600, 'at most a year')
        .optional()
        .describe('remove the route by itself after this many seconds (60 to 31622400), e.g. 3600 for a preview; default: never'),
      dryRun: z.boolean().optional().describe('true: answer the plan (target, reason, steps) and change nothing (default false)'),
      publishAhead: z
        .boolean()
        .optional()
        .describe(
          'true: publish even though nothing answers on the port yet, because the service starts later; the route carries a warning and you get ' +
            'route.service_answering when it first answers (or route.service_not_answering if it keeps not answering). Default false: refused with TARGET_NOT_ANSWERING',
        ),
    })
    .strict(),
  output: describedObject(
    {
      url: z.string(),
      hostname: z.string(),
      zone: z.string(),
      target: z.string(),
      reason: z.string(),
      alternatives: z.array(z.string()),
      dryRun: z.boolean(),
      plan: z.array(z.string()),
      timings,
      dnsRecordId: z.string().nullable(),
      commit: z.string().nullable(),
      expiresAt: z.string().nullable(),
      warning: z.string().nullable(),
    },
    {
      url: 'the public URL, e.g. "https://app.153.se"',
      hostname: 'the public name',
      zone: 'the Cloudflare zone it is in',
      target: 'where cloudflared sends the traffic, e.g. "http://localhost:3100"',
      reason: 'why that target: where cloudflared runs and where your service listens',
      alternatives: 'other targets that were considered, each with why not',
      dryRun: 'true when nothing was changed (the plan only)',
      plan: 'the steps, in plain words',
      timings: 'each step and its time (empty for a dry run)',
      dnsRecordId: 'the id of the CNAME record in Cloudflare',
      commit: 'the git commit of config.yml that added the rule',
      expiresAt: 'when the route removes itself (ISO 8601), null for never',
      warning: 'null when your service answered the check; else why the route may not serve yet (published ahead of the service, or the check could not run)',
    },
  ),
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
  output: describedObject(
    { hostname: z.string(), deleted: z.boolean(), dnsRecordDeleted: z.boolean(), timings },
    {
      hostname: 'the name that was removed',
      deleted: 'true: rule, record (if ours) and ledger entry are gone',
      dnsRecordDeleted: 'true when a DNS record was deleted (false for a record this manager did not create, which is left alone)',
      timings: 'each step of the removal and its time',
    },
  ),
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  access: 'any',
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
  handler: (args, { backend, principal }) => {
    if (args.project !== undefined && args.project !== principal.project && principal.role !== 'ms') {
      throw new TunnelManagerError({
        code: 'FORBIDDEN',
        message: `${principal.project} may not list the routes of ${args.project}.`,
        fix: 'Leave `project` out to list your own routes.',
        details: { project: args.project },
      });
    }
    const project = principal.role === 'ms' ? args.project : principal.project;
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
  output: z.object({
    domains: z
      .array(
        describedObject(
          { zoneId: z.string(), name: z.string(), status: z.string(), plan: z.string().nullable(), isDefault: z.boolean() },
          {
            zoneId: "the zone's Cloudflare id",
            name: 'the domain, e.g. "153.se": pass it as `domain` to tunnel_request_cname',
            status: "Cloudflare's status of the zone, e.g. active or pending",
            plan: "the zone's Cloudflare plan, when known",
            isDefault: 'true for the zone used when a request names no domain',
          },
        ),
      )
      .describe('the zones routes can be published on'),
  }),
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  access: 'any',
  handler: (_args, { backend }) => ({ domains: backend.listDomains() }),
});

const orphanSchema = describedObject(
  {
    hostname: z.string(),
    project: z.string(),
    reason: z.enum(['project-removed', 'record-missing', 'port-unallocated']),
    detail: z.string(),
    fix: z.string(),
    since: z.string(),
  },
  {
    hostname: 'the orphaned route',
    project: 'its owner',
    reason: 'project-removed: its project left the configuration; record-missing: its DNS record no longer points at the tunnel; port-unallocated: its port is no longer allocated to its project',
    detail: 'what exactly was found',
    fix: 'what to do about it',
    since: 'since when it is orphaned (ISO 8601)',
  },
);

export const scanOrphans = defineTool({
  name: 'tunnel_scan_orphans',
  title: 'Find orphaned routes',
  description:
    'Runs the orphan scan now (it also runs at start and weekly): finds routes whose project left the configuration, whose DNS record no longer ' +
    'points at the tunnel, or whose port is no longer allocated to their project. Flags them (tunnel_list_cnames shows `orphan`) and tells each ' +
    'owner once (event route.orphaned). Only a removed project\'s routes are removed, after orphans.projectRemovedGraceHours; each finding says what to do.',
  input: z.object({}).strict(),
  output: describedObject(
    {
      scannedAt: z.string(),
      routes: z.number(),
      zonesChecked: z.array(z.string()),
      orphans: z.array(orphanSchema),
      newlyOrphaned: z.array(z.string()),
      resolved: z.array(z.string()),
      unledgered: z.array(
        describedObject(
          { hostname: z.string(), zone: z.string(), recordId: z.string(), owner: z.string(), fix: z.string() },
          {
            hostname: 'the record name',
            zone: 'its zone',
            recordId: "the record's Cloudflare id",
            owner: 'the project its ownership marker names',
            fix: 'what to do about it',
          },
        ),
      ),
    },
    {
      scannedAt: 'when the scan ran (ISO 8601)',
      routes: 'routes looked at',
      zonesChecked: 'zones whose DNS records were read',
      orphans: 'every route that is orphaned now',
      newlyOrphaned: 'hostnames found orphaned by this scan (their owners were told)',
      resolved: 'hostnames that were orphaned and no longer are',
      unledgered: 'records marked as ours, pointing at our tunnel, with no route in the ledger: reported, never deleted',
    },
  ),
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  access: 'ms',
  handler: async (_args, { backend }) => {
    const { at, ...result } = await backend.scanOrphans();
    return { scannedAt: new Date(at).toISOString(), ...result };
  },
});

export const ROUTE_TOOLS = [requestCname, deleteCname, listCnames, listDomains, scanOrphans];
