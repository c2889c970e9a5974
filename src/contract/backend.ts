import type { PortManager } from '../ports/port-manager.ts';
import type { AuditRow } from '../store/audit-repository.ts';
import type { EventRow } from '../store/events-repository.ts';
import type { Route } from '../store/routes-repository.ts';
import type { InspectionReport, RollbackView } from './admin.ts';
import type { ConnectivityView, TopologyView } from './network.ts';
import type { CnameRequest, CnameResult, CnameUpdate, CnameUpdateResult, DeleteResult, DomainView, OrphanScanResult } from './routes.ts';
import type { MetricsView, TunnelStatus } from './status.ts';
import type { TrafficRequest, TrafficResult } from './traffic.ts';

/**
 * What the MCP tools need from the rest of the system (src/app/use-cases/backend.ts implements it). Requests and results are
 * the types inferred from the tools' schemas (./routes.ts, ./status.ts, ./network.ts, ./admin.ts), so a tool's
 * answer and the backend's result cannot drift apart. Whether the caller may act on the resource is decided before a
 * call gets here (src/mcp/authorization.ts): the backend gets the decided project, never the caller's identity, and
 * refuses only what no caller may do with the data.
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
  /** `by`: the project that asked (the event names it). */
  restartTunnel(by: string): Promise<TunnelStatus>;
  /**
   * `hooks.progress` hears each step of the saga (MCP progress notifications, when the caller asked for them); an
   * abort of `hooks.signal` cancels a provision at the end of its current step, and what it did is undone.
   */
  requestCname(project: string, request: CnameRequest, hooks?: CallHooks): Promise<CnameResult>;
  /**
   * Moves an active route to another port of its project and/or new origin settings, in place (the DNS record is
   * left alone); a failed reload puts the old target back. Who may, and whether the port is the owner's, was decided before.
   */
  updateCname(update: CnameUpdate, hooks?: CallHooks): Promise<CnameUpdateResult>;
  /** Removes the route, whoever owns it: who may remove it was decided before (the policy, a schedule, a label). */
  deleteCname(hostname: string, hooks?: CallHooks): Promise<DeleteResult>;
  /**
   * Traffic per hostname from Cloudflare's analytics: the one route named, or every route of `project` (undefined:
   * every project's). Answers are kept a minute per hostname; `available: false` says why Cloudflare could not be read.
   */
  traffic(request: TrafficRequest, project: string | undefined): Promise<TrafficResult>;
  findRoute(hostname: string): Route | undefined;
  listRoutes(filter: { project?: string }): Route[];
  pageRoutes(filter: { project?: string | undefined; after: string; limit: number }): { routes: Route[]; total: number };
  listDomains(): DomainView[];
  /** `project`: the port's project (its containers are searched first), or null when any project's port may be looked at. */
  checkConnectivity(project: string | null, port: number): Promise<ConnectivityView>;
  recommendConfig(project: string | null, port: number): Promise<ConnectivityView>;
  topology(): Promise<TopologyView>;
  events(cursor: number, limit: number, project?: string): EventRow[];
  rollbackConfig(commit: string): Promise<RollbackView>;
  /** Runs the orphan scan now (or waits for the one running) and answers its result. */
  scanOrphans(): Promise<OrphanScanResult>;
  audit(query: { limit: number; principal?: string; before?: number }): AuditRow[];
  recordAudit(entry: Omit<AuditRow, 'id'>): void;
  inspect(limit: number): InspectionReport;
  ports: PortManager;
  /** Every published event, as it happens. */
  onEvent(listener: (event: EventRow) => void): () => void;
}
