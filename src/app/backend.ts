import { backendContext, type BackendOptions, type ServiceBackend } from './backend-context.ts';
import { backendNetwork } from './backend-network.ts';
import { backendRoutes } from './backend-routes.ts';
import { backendStatus } from './backend-status.ts';

export type { BackendOptions, ServiceBackend } from './backend-context.ts';
export { waitForTunnelRunning } from './tunnel-availability.ts';

/**
 * The McpBackend: what the tools do, over the real adapters and actors, plus what the service's own schedules call.
 * Each concern is a part next to this file (routes, network, status) built over one shared context.
 */
export function createBackend(options: BackendOptions): ServiceBackend {
  const context = backendContext(options);
  return {
    ...backendStatus(context),
    ...backendRoutes(context),
    ...backendNetwork(context),
    ports: options.ports,
  };
}
