import { getZone, listZones } from './routes/zones-routes.ts';
import { createRecord, deleteRecord, getRecord, listRecords, patchRecord, putRecord } from './routes/dns-records-routes.ts';
import { getTunnelConfiguration, putTunnelConfiguration } from './routes/tunnel-configuration-routes.ts';
import type { RouteHandler } from './routes/route-context.ts';
import { ROUTE_PATTERNS, type RoutePattern } from './faults.ts';
import { graphqlAnalytics } from './analytics/graphql-route.ts';

/** Maps `METHOD /path` (relative to /client/v4) to the emulator's route pattern, its parameters and its handler. */

const HANDLERS: Record<RoutePattern, RouteHandler> = {
  'GET /zones': listZones,
  'GET /zones/:zone': getZone,
  'GET /zones/:zone/dns_records': listRecords,
  'POST /zones/:zone/dns_records': createRecord,
  'GET /zones/:zone/dns_records/:record': getRecord,
  'PATCH /zones/:zone/dns_records/:record': patchRecord,
  'PUT /zones/:zone/dns_records/:record': putRecord,
  'DELETE /zones/:zone/dns_records/:record': deleteRecord,
  'GET /accounts/:account/cfd_tunnel/:tunnel/configurations': getTunnelConfiguration,
  'PUT /accounts/:account/cfd_tunnel/:tunnel/configurations': putTunnelConfiguration,
  // What `tunnel-manager doctor` asks first: is this token valid and active.
  'GET /user/tokens/verify': {
    scope: 'self',
    handle: () => ({ result: { id: 'emulated-token', status: 'active' } }),
  },
  'POST /graphql': graphqlAnalytics,
};

export type RouteMatch =
  | { kind: 'route'; pattern: RoutePattern; params: Record<string, string>; handler: RouteHandler }
  | { kind: 'wrong-method' }
  | { kind: 'no-route' };

function matchPath(template: string, path: string): Record<string, string> | undefined {
  const want = template.split('/');
  const have = path.replace(/\/+$/, '').split('/');
  if (want.length !== have.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i += 1) {
    const segment = want[i] ?? '';
    const value = have[i] ?? '';
    if (segment.startsWith(':')) {
      if (value === '') return undefined;
      params[segment.slice(1)] = decodeURIComponent(value);
    } else if (segment !== value) {
      return undefined;
    }
  }
  return params;
}

export function routeRequest(method: string, path: string): RouteMatch {
  let pathKnown = false;
  for (const pattern of ROUTE_PATTERNS) {
    const [patternMethod = '', template = ''] = pattern.split(' ');
    const params = matchPath(template, path);
    if (params === undefined) continue;
    pathKnown = true;
    if (patternMethod === method) return { kind: 'route', pattern, params, handler: HANDLERS[pattern] };
  }
  return pathKnown ? { kind: 'wrong-method' } : { kind: 'no-route' };
}
