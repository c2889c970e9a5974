import { backendContext, type BackendOptions, type ServiceBackend } from './context.ts';
import { backendNetwork } from './network.ts';
import { backendRoutes } from './routes.ts';
import { backendStatus } from './status.ts';

export type { BackendOptions, ServiceBackend } from './context.ts';
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
