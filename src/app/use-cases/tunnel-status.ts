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

/** The status from a tunnel snapshot (live, or as persisted). */
export function statusOf(
  tunnel: { value: unknown; context: TunnelContext } | undefined,
  facts: { routes: number; tunnelId: string; asOf: number | null },
): TunnelStatus {
  const context = tunnel?.context;
  return {
    state: tunnel ? stateToString(tunnel.value) : 'unknown',
    pid: context?.process?.pid ?? null,
    adopted: context?.process ? context.process.adopted : null,
    upSince: iso(context?.upSince),
    restartCount: context?.restartCount ?? 0,
    consecutiveFailures: context?.consecutiveFailures ?? 0,
    // Only a running tunnel has ready connections: in backoff or stopped the last probe's count is history.
    readyConnections: tunnel && /^(running|reloading)/.test(stateToString(tunnel.value)) ? (context?.lastProbe?.readyConnections ?? null) : null,
    lastProbe: context?.lastProbe ?? null,
    lastOkProbeAt: iso(context?.lastOkProbeAt),
    currentDelayMs: context?.currentDelayMs ?? 0,
    nextStartAt: iso(context?.backoffUntil),
    lastError: context?.lastError ?? null,
    routes: facts.routes,
    tunnelId: facts.tunnelId,
    asOf: iso(facts.asOf),
  };
}

/** The tunnel's status as the running service last persisted it (readable from another process). */
export function readStatus(db: Database, config: Config): TunnelStatus {
  const stored = new ActorRepository(db).loadSnapshot(SUPERVISOR_ACTOR_ID);
  const tunnel = (stored?.snapshot as { children?: { tunnel?: { snapshot?: { value: unknown; context: TunnelContext } } } } | undefined)
    ?.children?.tunnel?.snapshot;
  return statusOf(tunnel, { routes: new RoutesRepository(db).count(), tunnelId: config.tunnel.id, asOf: stored?.updatedAt ?? null });
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
