import type { InspectionReport } from '../app/inspection.ts';
import type { OrphanScanResult } from '../app/orphans.ts';
import type { TunnelStatus } from '../app/status.ts';
import type { PortManager } from '../ports/port-manager.ts';
import type { AuditRow } from '../store/audit-repository.ts';
import type { EventRow } from '../store/events-repository.ts';
import type { Route } from '../store/routes-repository.ts';
import type { Principal } from './principal.ts';

/**
 * What the MCP tools need from the rest of the system. The tools check permissions and scope;
 * the backend (src/app/backend.ts) does the work and trusts the principal it is given.
 */

export interface CnameRequest {
  subdomain: string;
  domain?: string | undefined;
  targetPort: number;
  originRequest?: Record<string, unknown> | undefined;
  /** Seconds from now after which the route is removed. */
  expiresInSeconds?: number | undefined;
  dryRun?: boolean | undefined;
  /** Publish although nothing answers on the port yet (the service starts later). */
  publishAhead?: boolean | undefined;
}

export interface CnameResult {
  url: string;
  hostname: string;
  zone: string;
  target: string;
  reason: string;
  alternatives: string[];
  dryRun: boolean;
  /** What would happen or happened, step by step. */
  plan: string[];
  timings: { step: string; ms: number }[];
  dnsRecordId: string | null;
  commit: string | null;
  expiresAt: string | null;
  /** Set when the route was published ahead of its service, or the check could not run; null otherwise. */
  warning: string | null;
}

export interface DeleteResult {
  hostname: string;
  deleted: boolean;
  dnsRecordDeleted: boolean;
  timings: { step: string; ms: number }[];
}

export interface DomainView {
  zoneId: string;
  name: string;
  status: string;
  plan: string | null;
  isDefault: boolean;
}

export interface MetricsView {
  state: string;
  readyConnections: number | null;
  haConnections: number | null;
  totalRequests: number | null;
  requestErrors: number | null;
  responsesByCode: Record<string, number>;
  health: {
    samples24h: number;
    failedSamples24h: number;
    uptimePct24h: number | null;
    latencyAvgMs24h: number | null;
  };
}

export interface ConnectivityView {
  port: number;
  target: string | null;
  reason: string;
  reachable: boolean;
  check: string;
  latencyMs: number | null;
  recommendations: { command: string; explanation: string }[];
}

export interface TopologyView {
  available: boolean;
  reason: string | null;
  cloudflared: Record<string, unknown>;
  networks: Record<string, unknown>[];
  containers: Record<string, unknown>[];
  mermaid: string;
}

export interface RollbackView {
  commit: string;
  restoredFrom: string;
  newCommit: string | null;
  reloaded: boolean;
}

/** Reports a step of a long call, in plain words. */
export type Progress = (message: string) => void;

/** What an MCP call brings besides its arguments: where to report progress, and the caller's cancellation. */
export interface CallHooks {
  progress?: Progress;
  /** Aborted when the caller cancels (notifications/cancelled). */
  signal?: AbortSignal;
}

export interface McpBackend {
  status(): TunnelStatus;
  metrics(): Promise<MetricsView>;
  restartTunnel(by: Principal): Promise<TunnelStatus>;
  /**
   * `hooks.progress` hears each step of the saga (MCP progress notifications, when the caller asked for them); an
   * abort of `hooks.signal` cancels a provision at the end of its current step, and what it did is undone.
   */
  requestCname(by: Principal, request: CnameRequest, hooks?: CallHooks): Promise<CnameResult>;
  deleteCname(by: Principal, hostname: string, hooks?: CallHooks): Promise<DeleteResult>;
  findRoute(hostname: string): Route | undefined;
  listRoutes(filter: { project?: string }): Route[];
  pageRoutes(filter: { project?: string | undefined; after: string; limit: number }): { routes: Route[]; total: number };
  listDomains(): DomainView[];
  checkConnectivity(by: Principal, port: number): Promise<ConnectivityView>;
  recommendConfig(by: Principal, port: number): Promise<ConnectivityView>;
  topology(): Promise<TopologyView>;
  events(cursor: number, limit: number, project?: string): EventRow[];
  rollbackConfig(by: Principal, commit: string): Promise<RollbackView>;
  /** Runs the orphan scan now (or waits for the one running) and answers its result. */
  scanOrphans(): Promise<OrphanScanResult>;
  audit(query: { limit: number; principal?: string; before?: number }): AuditRow[];
  recordAudit(entry: Omit<AuditRow, 'id'>): void;
  inspect(limit: number): InspectionReport;
  ports: PortManager;
  /** Every published event, as it happens. */
  onEvent(listener: (event: EventRow) => void): () => void;
}
