import { backendContext, type BackendOptions, type ManagerBackend } from './context.ts';
import { backendNetwork } from './network.ts';
import { backendRoutes } from './routes.ts';
import { backendUpdateRoute } from './update-route.ts';
import { backendStatus } from './status.ts';
import { backendTraffic } from './route-traffic.ts';

export type { BackendOptions, ManagerBackend } from './context.ts';
export { waitForTunnelRunning } from './tunnel-availability.ts';

/**
 * The McpBackend: what the tools do, over the real adapters and actors, plus what the service's own schedules call.
 * Each concern is a part next to this file (routes, network, status) built over one shared context.
 */
export function createBackend(options: BackendOptions): ManagerBackend {
  const context = backendContext(options);
  return {
    ...backendStatus(context),
    ...backendRoutes(context),
    ...backendUpdateRoute(context),
    ...backendNetwork(context),
    ...backendTraffic(context),
    ports: options.ports,
  };
}
