import { rollbackIngress } from '../effects/ingress-effects.ts';
import { parsePrometheusText } from '../../cloudflared/prometheus-text.ts';
import type { RollbackView } from '../../contract/admin.ts';
import type { MetricsView, TunnelStatus } from '../../contract/status.ts';
import type { BackendContext, ManagerBackend, TunnelSnapshot } from './context.ts';
import { TunnelManagerError } from '../../errors.ts';
import { readInspection } from '../operations/inspection.ts';
import { supervisorChild } from '../actors/supervisor-children.ts';
import { waitForTunnelRunning } from './tunnel-availability.ts';
import { stateToString } from '../actors/transition-recorder.ts';

/** The backend's status part: the tunnel's status, metrics and restart, the events and audit logs, inspection, rollback. */

const HOUR = 3_600_000;

/** tunnel_get_metrics: cloudflared's own counters (null when it does not answer) and the last 24 hours of health probes. */
async function metrics(context: BackendContext): Promise<MetricsView> {
  const snapshot = context.tunnelSnapshot();
  const summary = context.options.health.summary(Date.now(), 24 * HOUR);
  let samples: ReturnType<typeof parsePrometheusText>['samples'] = [];
  try {
    const response = await fetch(`http://${context.options.metricsAddress()}/metrics`, { signal: AbortSignal.timeout(2_000) });
    if (response.ok) samples = parsePrometheusText(await response.text()).samples;
  } catch {
    // cloudflared is not answering: the counters stay null and the state says why.
  }
  const total = (name: string): number | null => {
    const named = samples.filter((sample) => sample.name === name);
    return named.length === 0 ? null : named.reduce((sum, sample) => sum + sample.value, 0);
  };
  const responsesByCode: Record<string, number> = {};
  for (const sample of samples.filter((s) => s.name === 'cloudflared_tunnel_response_by_code')) {
    const code = sample.labels.status_code ?? 'unknown';
    responsesByCode[code] = (responsesByCode[code] ?? 0) + sample.value;
  }
  return {
    state: stateToString(snapshot.value),
    readyConnections: snapshot.context.lastProbe?.readyConnections ?? null,
    haConnections: total('cloudflared_tunnel_ha_connections'),
    totalRequests: total('cloudflared_tunnel_total_requests'),
    requestErrors: total('cloudflared_tunnel_request_errors'),
    responsesByCode,
    health: {
      samples24h: summary.samples,
      failedSamples24h: summary.failed,
      uptimePct24h: summary.uptimePct,
      latencyAvgMs24h: summary.latencyAvgMs,
    },
  };
}

/** A restart that replaced a running cloudflared must have a new process: else the old one keeps serving, and that is said. */
function assertTookOver(before: TunnelSnapshot, after: TunnelSnapshot['context']): void {
  if (after.process?.pid !== before.context.process?.pid) return;
  throw new TunnelManagerError({
    code: 'TUNNEL_START_FAILED',
    message: `The new cloudflared did not take over${after.lastError ? ` (${after.lastError})` : ''}; the running one (pid ${after.process?.pid ?? '?'}) keeps serving.`,
    fix: 'Read the reason above and cloudflared\'s log (data directory, cloudflared/cloudflared.log); correct it, then call tunnel_restart again.',
    details: { pid: after.process?.pid ?? null, lastError: after.lastError },
  });
}

/** tunnel_restart: restarts cloudflared and answers the status once it runs again. `by`: the project that asked. */
async function restartTunnel(context: BackendContext, by: string): Promise<TunnelStatus> {
  const { config, bus } = context.options;
  const tunnel = supervisorChild(context.options.supervisor(), 'tunnel');
  const before = context.tunnelSnapshot();
  const wasUp = before.context.downSince === null;
  const downAt = Date.now();
  tunnel.send({ type: 'RESTART' });
  // A running tunnel is replaced (the new cloudflared serves before the old one stops: no outage, and the tunnel
  // actor reports `tunnel.restarted`). Otherwise the restart takes the tunnel down on purpose: the tunnel machine
  // emits nothing for that (it reports failures), so say it here, for the events log and the subscribers of
  // tunnel://status. A tunnel that was already down (backoff) reports its own recovery when it starts.
  // During a reload the restart waits for it and then replaces the process: no outage either.
  const after = context.tunnelSnapshot().value;
  const outage = wasUp && after !== 'replacing' && after !== 'reloading';
  if (outage) bus.publish('tunnel.down', '*', { reason: `restart requested by ${by}`, manual: true, pid: before.context.process?.pid ?? null }, downAt);
  await waitForTunnelRunning(tunnel, (config.restart.startTimeoutSeconds + config.restart.stopGraceSeconds + 5) * 1000, 'The restart did not bring it up.');
  if (outage) bus.publish('tunnel.recovered', '*', { downForMs: Date.now() - downAt, pid: context.tunnelSnapshot().context.process?.pid ?? null, manual: true });
  if (!outage && wasUp) assertTookOver(before, context.tunnelSnapshot().context);
  return context.status();
}

async function rollbackConfig(context: BackendContext, commit: string): Promise<RollbackView> {
  const ingress = supervisorChild(context.options.supervisor(), 'ingress');
  const result = await rollbackIngress(ingress, commit);
  return { commit, restoredFrom: commit, newCommit: result.commit, reloaded: result.reloaded };
}

export function backendStatus(
  context: BackendContext,
): Pick<ManagerBackend, 'status' | 'metrics' | 'restartTunnel' | 'events' | 'rollbackConfig' | 'audit' | 'recordAudit' | 'inspect' | 'onEvent'> {
  const { options } = context;
  return {
    status: context.status,
    metrics: () => metrics(context),
    restartTunnel: async (by) => restartTunnel(context, by),
    events: (cursor, limit, project) => options.events.since(cursor, limit, project),
    rollbackConfig: async (commit) => rollbackConfig(context, commit),
    audit: (query) => options.audit.recent(query.limit, { ...(query.principal ? { principal: query.principal } : {}), ...(query.before ? { before: query.before } : {}) }),
    recordAudit: (entry) => {
      options.audit.record(entry);
    },
    inspect: (limit) => {
      options.flushSnapshot();
      return readInspection(options.db, limit);
    },
    onEvent: (listener) => options.bus.subscribe(listener),
  };
}
