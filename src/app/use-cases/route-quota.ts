import { TunnelManagerError } from '../../errors.ts';

/**
 * `limits.routesPerProject`: the refusal of a new route once its project holds that many routes it asked for. The
 * request checks it early (nothing is looked up in Cloudflare for a project at its quota); the saga's reservation
 * checks it again in the same transaction that inserts the row, so parallel requests can never overshoot it.
 */
export function routeQuotaExceeded(project: string, held: number, quota: number): TunnelManagerError {
  return new TunnelManagerError({
    code: 'ROUTE_QUOTA_EXCEEDED',
    message: `${project} holds ${held} routes it asked for, its quota of ${quota}; nothing was created.`,
    fix: 'Delete a route you no longer need (tunnel_list_cnames, then tunnel_delete_cname) and retry, or ask the operator to raise limits.routesPerProject.',
    details: { project, routes: held, quota },
  });
}
