import type { Database } from 'better-sqlite3';
import type { TunnelContext } from '../../../machines/tunnel.machine.ts';
import type { TunnelStatus } from '../../contract/status.ts';
import { ActorRepository } from '../../store/actor-repository.ts';
import { RoutesRepository } from '../../store/routes-repository.ts';
import type { Config } from '../config/config.ts';
import { SUPERVISOR_ACTOR_ID } from '../actors/durable-supervisor.ts';
import { stateToString } from '../actors/transition-recorder.ts';

export type { TunnelStatus };

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

interface TunnelSnapshotLike {
  value: unknown;
  context: TunnelContext;
}

/** The process and its history: what a status says before the health probes. */
function processView(context: TunnelContext | undefined) {
  return {
    pid: context?.process?.pid ?? null,
    adopted: context?.process ? context.process.adopted : null,
    upSince: iso(context?.upSince),
    restartCount: context?.restartCount ?? 0,
    consecutiveFailures: context?.consecutiveFailures ?? 0,
  };
}

/** The probes and the backoff. Only a running tunnel has ready connections: in backoff or stopped the last probe's count is history. */
function healthView(tunnel: TunnelSnapshotLike | undefined) {
  const context = tunnel?.context;
  const running = tunnel !== undefined && /^(running|reloading)/.test(stateToString(tunnel.value));
  return {
    readyConnections: running ? (context?.lastProbe?.readyConnections ?? null) : null,
    lastProbe: context?.lastProbe ?? null,
    lastOkProbeAt: iso(context?.lastOkProbeAt),
    currentDelayMs: context?.currentDelayMs ?? 0,
    nextStartAt: iso(context?.backoffUntil),
    lastError: context?.lastError ?? null,
  };
}

/** The status from a tunnel snapshot (live, or as persisted). */
export function statusOf(tunnel: TunnelSnapshotLike | undefined, facts: { routes: number; tunnelId: string; asOf: number | null }): TunnelStatus {
  return {
    state: tunnel ? stateToString(tunnel.value) : 'unknown',
    ...processView(tunnel?.context),
    ...healthView(tunnel),
    routes: facts.routes,
    tunnelId: facts.tunnelId,
    asOf: iso(facts.asOf),
  };
}

/** The tunnel child's snapshot inside a persisted supervisor snapshot, when there is one. */
function persistedTunnel(snapshot: unknown): TunnelSnapshotLike | undefined {
  const children: unknown = typeof snapshot === 'object' && snapshot !== null && 'children' in snapshot ? snapshot.children : undefined;
  const tunnel: unknown = typeof children === 'object' && children !== null && 'tunnel' in children ? children.tunnel : undefined;
  const child: unknown = typeof tunnel === 'object' && tunnel !== null && 'snapshot' in tunnel ? tunnel.snapshot : undefined;
  return isTunnelSnapshot(child) ? child : undefined;
}

/** A persisted tunnel snapshot: a state value and a context object (written by this service's own tunnel machine). */
function isTunnelSnapshot(value: unknown): value is TunnelSnapshotLike {
  return typeof value === 'object' && value !== null && 'value' in value && 'context' in value && typeof value.context === 'object' && value.context !== null;
}

/** The tunnel's status as the running service last persisted it (readable from another process). */
export function readStatus(db: Database, config: Config): TunnelStatus {
  const stored = new ActorRepository(db).loadSnapshot(SUPERVISOR_ACTOR_ID);
  return statusOf(persistedTunnel(stored?.snapshot), { routes: new RoutesRepository(db).count(), tunnelId: config.tunnel.id, asOf: stored?.updatedAt ?? null });
}

export function formatStatus(status: TunnelStatus): string {
  if (status.state === 'unknown') {
    return 'Tunnel state unknown: the service has not run with this data directory yet (start it with `tunnel-manager serve`).';
  }
  const lines = [
    `tunnel ${status.tunnelId}: ${status.state}`,
    `  pid:                  ${status.pid ?? '-'}${status.adopted ? ' (adopted)' : ''}`,
    `  up since:             ${status.upSince ?? '-'}`,
    `  restarts:             ${status.restartCount}`,
    `  ready connections:    ${status.readyConnections ?? '-'}`,
    `  last ok probe:        ${status.lastOkProbeAt ?? '-'}`,
    `  failed probes in row: ${status.consecutiveFailures}`,
    `  routes:               ${status.routes}`,
  ];
  if (status.nextStartAt) lines.push(`  next start at:        ${status.nextStartAt} (waiting ${Math.round(status.currentDelayMs / 1000)} s)`);
  if (status.lastError) lines.push(`  last error:           ${status.lastError}`);
  lines.push(`  as of:                ${status.asOf}`);
  return lines.join('\n');
}
