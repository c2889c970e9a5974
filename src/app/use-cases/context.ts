import type Dockerode from 'dockerode';
import type { Actor } from 'xstate';
import type { SupervisorMachine } from '../../../machines/supervisor.machine.ts';
import type { TunnelContext } from '../../../machines/tunnel.machine.ts';
import type { CloudflareProvider } from '../../cloudflare/cloudflare-provider.ts';
import type { ZoneDirectory } from '../../cloudflare/zones.ts';
import type { ConnectivityReport } from '../../docker/connectivity-check.ts';
import type { TopologyTracker } from '../../docker/topology-tracker.ts';
import type { McpBackend } from '../../contract/backend.ts';
import type { DeleteResult } from '../../contract/routes.ts';
import type { TunnelStatus } from '../../contract/status.ts';
import type { PortManager } from '../../ports/port-manager.ts';
import type { AuditRepository } from '../../store/audit-repository.ts';
import type { Database } from '../../store/database.ts';
import type { DomainsRepository } from '../../store/domains-repository.ts';
import type { EventsRepository } from '../../store/events-repository.ts';
import type { HealthRepository } from '../../store/health-repository.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import type { Config } from '../config/config.ts';
import type { EventBus } from '../actors/event-bus.ts';
import type { RouteRunner } from '../actors/route-runner.ts';
import { statusOf } from './tunnel-status.ts';
import { supervisorChild } from '../actors/supervisor-children.ts';

/**
 * What the backend is built from, and what its parts (backend-routes.ts, backend-network.ts, backend-status.ts)
 * share. backend.ts builds the context once and merges the parts.
 */

export interface BackendOptions {
  config: Config;
  db: Database;
  supervisor: () => Actor<SupervisorMachine>;
  flushSnapshot: () => void;
  routes: RoutesRepository;
  domains: DomainsRepository;
  events: EventsRepository;
  audit: AuditRepository;
  health: HealthRepository;
  ports: PortManager;
  bus: EventBus;
  provider: CloudflareProvider;
  zones: ZoneDirectory;
  runner: RouteRunner;
  topology: TopologyTracker;
  docker: Dockerode | null;
  /** Where cloudflared serves /metrics now (it moves during a replica reload). */
  metricsAddress: () => string;
}

/** The backend of the MCP tools, plus what the tunnel manager's own schedules call. */
export type ManagerBackend = McpBackend & {
  /** A new delete for a route a failed delete left `deleting` (the retry schedule); null when there is none to retry. */
  retryDelete(hostname: string): Promise<DeleteResult | null>;
  /** The connectivity check for a target, from where cloudflared runs now (the publish-ahead watch uses it). */
  verifyTarget(target: string): Promise<ConnectivityReport>;
};

export type TunnelSnapshot = { value: unknown; context: TunnelContext };

/** The options, and the readings of the tunnel actor that several parts make. */
export interface BackendContext {
  readonly options: BackendOptions;
  /** The tunnel actor's snapshot now. */
  tunnelSnapshot(): TunnelSnapshot;
  /** tunnel_get_status's answer now. */
  status(): TunnelStatus;
}

export function backendContext(options: BackendOptions): BackendContext {
  const tunnelSnapshot = (): TunnelSnapshot => supervisorChild(options.supervisor(), 'tunnel').getSnapshot();
  return {
    options,
    tunnelSnapshot,
    status: () => statusOf(tunnelSnapshot(), { routes: options.routes.count(), tunnelId: options.config.tunnel.id, asOf: Date.now() }),
  };
}
