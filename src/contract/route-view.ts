import { z } from 'zod';
import type { Route } from '../store/routes-repository.ts';
import { describedObject } from './arguments.ts';

/** One route of the ledger, as tunnel_list_cnames answers it. */
export const routeSchema = describedObject(
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
    updatedAt: z.string(),
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
    updatedAt: 'when its ledger row last changed (ISO 8601): a new target (tunnel_update_cname), a status, a retry',
  },
);

/** A ledger row as the answer shows it. */
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
    updatedAt: new Date(route.updatedAt).toISOString(),
  };
}
