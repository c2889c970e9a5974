import type { TrafficRequest, TrafficResult } from '../../contract/traffic.ts';
import type { BackendContext } from './context.ts';
import { routeNotFound } from './hostname.ts';
import { TrafficReader, type TrafficTarget } from './traffic.ts';

/**
 * The backend's traffic part (tunnel_get_traffic): the routes asked for, read through one TrafficReader (its minute of
 * memory is what keeps the tool from spending the Cloudflare budget). Who may read which route was decided before.
 */
export function backendTraffic(context: BackendContext): { traffic: (request: TrafficRequest, project: string | undefined) => Promise<TrafficResult> } {
  const { routes, provider } = context.options;
  const reader = new TrafficReader({ read: (input) => provider.zoneTraffic(input) });
  return {
    traffic: async (request, project) => {
      const hostname = request.hostname?.toLowerCase();
      const route = hostname === undefined ? undefined : routes.find(hostname);
      if (hostname !== undefined && route === undefined) throw routeNotFound(hostname);
      const chosen = route ? [route] : routes.list(project === undefined ? {} : { project });
      const targets: TrafficTarget[] = chosen.map((row) => ({ hostname: row.hostname, project: row.project, zoneId: row.zoneId, zoneName: row.zoneName }));
      return reader.read(targets, request.window);
    },
  };
}
