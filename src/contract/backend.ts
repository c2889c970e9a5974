import type { PortManager } from '../ports/port-manager.ts';
import type { AuditRow } from '../store/audit-repository.ts';
import type { EventRow } from '../store/events-repository.ts';
import type { Route } from '../store/routes-repository.ts';
import type { InspectionReport, RollbackView } from './admin.ts';
import type { ConnectivityView, TopologyView } from './network.ts';
import type { Principal } from './principal.ts';
import type { CnameRequest, CnameResult, DeleteResult, DomainView, OrphanScanResult } from './routes.ts';
import type { MetricsView, TunnelStatus } from './status.ts';

/**
 * What the MCP tools need from the rest of the system (src/app/use-cases/backend.ts implements it). Requests and results are
 * the types inferred from the tools' schemas (./routes.ts, ./status.ts, ./network.ts, ./admin.ts), so a tool's
 * answer and the backend's result cannot drift apart. Whether the principal may act on the resource is decided
 * before a call gets here (src/mcp/authorization.ts); the backend refuses only what no caller may do with the data.
 */

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
