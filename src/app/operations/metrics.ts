import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RouteOutput } from '../../../machines/route.machine.ts';
import type { Route } from '../../store/routes-repository.ts';

/** What the gauges read at scrape time. */
export interface MetricsSources {
  routes: () => Route[];
  /** The configured projects: the `project` label takes only these (`unconfigured` for a row of any other). */
  projects: ReadonlySet<string>;
  tunnel: () => { state: string; restartCount: number; consecutiveFailures: number; currentDelayMs: number; readyConnections: number | null };
}

export interface ManagerMetrics {
  registry: Registry;
  /** The tools that exist (the front end's): a call naming any other is counted as `unknown`. */
  knowTools(names: readonly string[]): void;
  /** A tool call ended (from its audit row). */
  toolCall(tool: string, outcome: string, durationMs: number): void;
  /** A route saga ended: its steps' durations and its outcome. */
  sagaFinished(output: RouteOutput): void;
  reload(strategy: string, outcome: 'ok' | 'failed'): void;
  /** One HTTP request to the Cloudflare API and how it ended (a status class, or `network` when none came back). */
  cloudflareRequest(method: string, outcome: string, durationMs: number): void;
  dockerEvent(kind: string): void;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type TunnelReading = ReturnType<MetricsSources['tunnel']>;

/** The tunnel's numbers, each a gauge read from the tunnel actor at scrape time. */
const TUNNEL_GAUGES: { name: string; help: string; read: (tunnel: TunnelReading) => number }[] = [
  { name: 'tunnel_manager_tunnel_up', help: '1 while cloudflared runs and serves (running.*), 0 otherwise.', read: (t) => (t.state.startsWith('running') ? 1 : 0) },
  { name: 'tunnel_manager_tunnel_consecutive_failures', help: 'Failed starts or crashes of cloudflared in a row (the backoff step).', read: (t) => t.consecutiveFailures },
  { name: 'tunnel_manager_tunnel_backoff_seconds', help: 'The wait before the next start of cloudflared (0 when not backing off).', read: (t) => t.currentDelayMs / 1000 },
  {
    name: 'tunnel_manager_tunnel_ready_connections',
    help: 'Edge connections cloudflared reported ready at the last probe (-1 when unknown).',
    read: (t) => t.readyConnections ?? -1,
  },
];

/** The gauges read at scrape time: routes by status and project, the tunnel's state and numbers. */
function registerGauges(registry: Registry, sources: MetricsSources): void {
  new Gauge({
    name: 'tunnel_manager_routes',
    help: 'Routes in the ledger, by status and project (unconfigured: a project no longer in the configuration).',
    labelNames: ['status', 'project'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, { status: string; project: string; n: number }>();
      for (const route of sources.routes()) {
        const project = sources.projects.has(route.project) ? route.project : 'unconfigured';
        const key = `${route.status}\u0000${project}`;
        const entry = counts.get(key) ?? { status: route.status, project, n: 0 };
        entry.n += 1;
        counts.set(key, entry);
      }
      for (const { status, project, n } of counts.values()) this.set({ status, project }, n);
    },
  });
  new Gauge({
    name: 'tunnel_manager_tunnel_state',
    help: "1 for the tunnel actor's current state (running.up serves traffic).",
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ state: sources.tunnel().state }, 1);
    },
  });
  // A counter, read at scrape time: it grows by what the tunnel actor's count grew since the last scrape. The count is
  // restored with the actor's snapshot, so a manager restart usually carries it on; a count that starts again from 0
  // (a fresh actor) is added from there, and the counter never goes down.
  let restartsSeen: number | null = null;
  new Counter({
    name: 'tunnel_manager_tunnel_restarts_total',
    help: 'Restarts of cloudflared counted by the tunnel actor.',
    registers: [registry],
    collect() {
      const count = sources.tunnel().restartCount;
      const grew = restartsSeen === null || count < restartsSeen ? count : count - restartsSeen;
      restartsSeen = count;
      if (grew > 0) this.inc(grew);
    },
  });
  for (const { name, help, read } of TUNNEL_GAUGES) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(sources.tunnel()));
      },
    });
  }
}

/** The counters and histograms of what happens: tool calls, sagas, reloads, Cloudflare requests, Docker events. */
function registerCounters(registry: Registry) {
  return {
    toolCalls: new Counter({ name: 'tunnel_manager_tool_calls_total', help: 'MCP tool calls, by tool and outcome (ok, denied, error).', labelNames: ['tool', 'outcome'], registers: [registry] }),
    toolSeconds: new Histogram({ name: 'tunnel_manager_tool_call_duration_seconds', help: 'MCP tool call durations, by tool.', labelNames: ['tool'], buckets: SECONDS, registers: [registry] }),
    sagas: new Counter({ name: 'tunnel_manager_sagas_total', help: 'Route sagas ended, by kind (provision, deprovision) and outcome (ok, failed).', labelNames: ['kind', 'outcome'], registers: [registry] }),
    steps: new Histogram({ name: 'tunnel_manager_saga_step_duration_seconds', help: 'Route saga step durations, by kind and step.', labelNames: ['kind', 'step'], buckets: SECONDS, registers: [registry] }),
    reloads: new Counter({ name: 'tunnel_manager_reloads_total', help: 'cloudflared reloads, by strategy (replica, restart, remote, on-next-start) and outcome.', labelNames: ['strategy', 'outcome'], registers: [registry] }),
    cloudflare: new Counter({ name: 'tunnel_manager_cloudflare_requests_total', help: 'Requests to the Cloudflare API, by method and outcome (2xx, 4xx, 429, 5xx, network).', labelNames: ['method', 'outcome'], registers: [registry] }),
    cloudflareSeconds: new Histogram({ name: 'tunnel_manager_cloudflare_request_duration_seconds', help: 'Cloudflare API request durations.', labelNames: ['method'], buckets: SECONDS, registers: [registry] }),
    docker: new Counter({ name: 'tunnel_manager_docker_events_total', help: 'Docker topology changes seen, by kind.', labelNames: ['kind'], registers: [registry] }),
  };
}

/**
 * The manager's own metrics, in Prometheus' text format (prom-client), on their own registry: routes by state and
 * project, tool calls, saga steps, the tunnel's state, restarts and backoff, reloads, Cloudflare API calls and Docker
 * events, plus Node's process metrics. Nothing here carries a token, a secret or a request's arguments, and every label
 * takes a bounded set of values. `promtool check metrics` finds nothing to say (test/e2e/metrics.test.ts).
 */
export function createManagerMetrics(sources: MetricsSources): ManagerMetrics {
  const registry = new Registry();
  // The event loop lag monitor samples every `eventLoopMonitoringPrecision` ms; at prom-client's default (10 ms) it
  // woke the idle manager 100 times a second (0.5 % of a core, measured). Once a second is plenty for a scrape.
  collectDefaultMetrics({ register: registry, prefix: 'tunnel_manager_', eventLoopMonitoringPrecision: 1000 });
  // Gauges named like counters (promtool: non-counter metrics should not have "_total"); the same figures are there by
  // type in tunnel_manager_nodejs_active_{handles,requests,resources}.
  for (const name of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`tunnel_manager_nodejs_active_${name}_total`);
  registerGauges(registry, sources);
  const { toolCalls, toolSeconds, sagas, steps, reloads, cloudflare, cloudflareSeconds, docker } = registerCounters(registry);

  // The `tool` label takes only the names of tools that exist: a caller's made-up names would each add series.
  let tools: ReadonlySet<string> = new Set();
  return {
    registry,
    knowTools: (names) => {
      tools = new Set(names);
    },
    toolCall: (name, outcome, durationMs) => {
      const tool = tools.has(name) ? name : 'unknown';
      toolCalls.inc({ tool, outcome });
      toolSeconds.observe({ tool }, durationMs / 1000);
    },
    sagaFinished: (output) => {
      sagas.inc({ kind: output.request.kind, outcome: output.ok ? 'ok' : 'failed' });
      for (const timing of output.timings) steps.observe({ kind: output.request.kind, step: timing.step }, timing.ms / 1000);
    },
    reload: (strategy, outcome) => reloads.inc({ strategy, outcome }),
    cloudflareRequest: (method, outcome, durationMs) => {
      cloudflare.inc({ method, outcome });
      cloudflareSeconds.observe({ method }, durationMs / 1000);
    },
    dockerEvent: (kind) => docker.inc({ kind }),
  };
}

/** The outcome label of an HTTP status: 429 on its own (rate limited), else its class. */
export function statusClass(status: number): string {
  return status === 429 ? '429' : `${Math.floor(status / 100)}xx`;
}
