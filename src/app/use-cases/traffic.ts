import type { DatasetLimits, TrafficQueryInput, TrafficRow, ZoneTrafficAnswer } from '../../cloudflare/traffic-analytics.ts';
import { WINDOW_SECONDS, type HostTraffic, type TrafficResult, type TrafficWindow } from '../../contract/traffic.ts';
import { TunnelManagerError } from '../../errors.ts';
import { planChunks, summarizeHost, unavailableHost, type ChunkPlan } from './traffic-summary.ts';

/**
 * tunnel_get_traffic's reader: one GraphQL request per zone for the hostnames asked, answers kept for a minute per
 * hostname and window (so a project's calls reach Cloudflare, and count against its share of the budget, at most once
 * a minute per hostname whatever it asks), concurrent asks for the same hostname sharing one request, and each zone's
 * dataset limits (its settings node) read along with the data and kept for an hour.
 */

export interface TrafficTarget {
  hostname: string;
  project: string;
  zoneId: string;
  zoneName: string;
}

export interface TrafficReaderOptions {
  /** One zone's query (CloudflareProvider.zoneTraffic). */
  read: (input: TrafficQueryInput) => Promise<ZoneTrafficAnswer>;
  now?: () => number;
  /** How long an answer is reused; default 60 s. */
  cacheMs?: number;
  /** How long a zone's dataset limits are trusted; default an hour. */
  limitsTtlMs?: number;
}

/** One hostname's answer, with what the whole answer must say about it. */
interface HostOutcome {
  traffic: HostTraffic;
  plan: ChunkPlan;
  notes: string[];
  fix: string | null;
}

const ANALYTICS_FIX = (zoneName: string) =>
  `Give the Cloudflare API token the permission Analytics:Read (Zone → Analytics → Read) on ${zoneName}; \`tunnel-manager doctor\` checks it. Routes keep working without it.`;

function problemNotes(answer: ZoneTrafficAnswer, plan: ChunkPlan): string[] {
  const notes: string[] = [];
  if (plan.cut) notes.push(plan.cut);
  for (const problem of answer.problems) {
    const chunk = problem.chunk === null ? undefined : plan.chunks[problem.chunk];
    if (chunk) notes.push(`Cloudflare refused ${chunk.from.toISOString()} to ${chunk.to.toISOString()} (${problem.code}: ${problem.message}); those hours count 0.`);
  }
  if (answer.truncated) notes.push('Cloudflare sent a full page of groups for a chunk: ask for one hostname or a shorter window for exact figures.');
  return notes;
}

/** Why a zone's answer is of no use at all (the permission, the dataset, the query), or null when it is. */
function zoneRefusal(answer: ZoneTrafficAnswer, target: TrafficTarget): { reason: string; fix: string } | null {
  const authz = answer.problems.find((problem) => problem.code === 'authz');
  if (authz) return { reason: `the API token may not read the analytics of ${target.zoneName} (Cloudflare: ${authz.message})`, fix: ANALYTICS_FIX(target.zoneName) };
  if (answer.limits && !answer.limits.enabled) {
    return { reason: `the plan of ${target.zoneName} has no HTTP request analytics (httpRequestsAdaptiveGroups is not enabled)`, fix: 'Nothing to do in Tunnel Manager: the zone\'s plan decides it.' };
  }
  const whole = answer.problems.find((problem) => problem.chunk === null);
  if (whole && answer.rows.length === 0) {
    return { reason: `Cloudflare did not answer the analytics query for ${target.zoneName} (${whole.code}: ${whole.message})`, fix: 'Retry in a minute; if it persists, run `tunnel-manager doctor`.' };
  }
  return null;
}

export class TrafficReader {
  private readonly now: () => number;
  private readonly cacheMs: number;
  private readonly limitsTtlMs: number;
  /** `window|project|hostname` → the answer (a promise, so a concurrent ask shares it) and when it was asked. */
  private readonly answers = new Map<string, { at: number; outcome: Promise<HostOutcome> }>();
  private readonly limits = new Map<string, { at: number; limits: DatasetLimits }>();
  /** Requests sent to Cloudflare, and dataset nodes asked in them (the benchmark reads these). */
  readonly spent = { requests: 0, queries: 0 };

  constructor(private readonly options: TrafficReaderOptions) {
    this.now = options.now ?? Date.now;
    this.cacheMs = options.cacheMs ?? 60_000;
    this.limitsTtlMs = options.limitsTtlMs ?? 3_600_000;
  }

  async read(targets: readonly TrafficTarget[], window: TrafficWindow): Promise<TrafficResult> {
    const now = this.now();
    for (const [key, entry] of this.answers) if (now - entry.at >= this.cacheMs) this.answers.delete(key);
    const stale = new Map<string, TrafficTarget[]>();
    for (const target of targets) {
      if (this.answers.has(this.key(window, target))) continue;
      const zone = stale.get(target.zoneId);
      if (zone) zone.push(target);
      else stale.set(target.zoneId, [target]);
    }
    for (const zoneTargets of stale.values()) this.ask(zoneTargets, window, now);
    const outcomes = await Promise.all(targets.map((target) => this.answers.get(this.key(window, target))?.outcome ?? Promise.reject(new Error('lost answer'))));
    return this.combine(outcomes, window, now);
  }

  private key(window: TrafficWindow, target: TrafficTarget): string {
    return `${window}|${target.project}|${target.hostname}`;
  }

  /** Starts one zone's request and files each hostname's share of it; a failed request is not kept. */
  private ask(targets: readonly TrafficTarget[], window: TrafficWindow, now: number): void {
    const zone = this.fetchZone(targets, window, now);
    for (const target of targets) {
      const key = this.key(window, target);
      const outcome = zone.then((byHost) => byHost.get(target.hostname) ?? Promise.reject(new Error(`no answer for ${target.hostname}`)));
      const entry = { at: now, outcome };
      // Forgotten when it failed, unless a newer ask has taken its place meanwhile.
      outcome.catch(() => this.answers.get(key) === entry && this.answers.delete(key));
      this.answers.set(key, entry);
    }
  }

  private async fetchZone(targets: readonly TrafficTarget[], window: TrafficWindow, now: number): Promise<Map<string, HostOutcome>> {
    const first = targets[0];
    if (first === undefined) return new Map();
    const known = this.limits.get(first.zoneId);
    const limits = known && now - known.at < this.limitsTtlMs ? known.limits : null;
    const plan = planChunks(now, WINDOW_SECONDS[window], limits);
    const answer = await this.query({ zoneId: first.zoneId, hostnames: targets.map((target) => target.hostname), chunks: plan.chunks, withLimits: limits === null });
    if (answer.limits) this.limits.set(first.zoneId, { at: now, limits: answer.limits });
    const refusal = zoneRefusal(answer, first);
    const notes = problemNotes(answer, plan);
    const rowsOf = new Map<string, TrafficRow[]>();
    for (const row of answer.rows) {
      const rows = rowsOf.get(row.hostname);
      if (rows) rows.push(row);
      else rowsOf.set(row.hostname, [row]);
    }
    const asOf = new Date(now);
    return new Map(
      targets.map((target) => [
        target.hostname,
        refusal
          ? { traffic: unavailableHost(target.hostname, target.project, refusal.reason), plan, notes: [], fix: refusal.fix }
          : { traffic: summarizeHost({ ...target, rows: rowsOf.get(target.hostname) ?? [], from: plan.from, to: plan.to, asOf }), plan, notes, fix: null },
      ]),
    );
  }

  /** The request, counted; a token Cloudflare refuses outright makes the answer unavailable, other failures are the caller's error. */
  private async query(input: TrafficQueryInput): Promise<ZoneTrafficAnswer> {
    this.spent.requests += 1;
    this.spent.queries += input.chunks.length;
    try {
      return await this.options.read(input);
    } catch (error) {
      if (!(error instanceof TunnelManagerError) || error.code !== 'CLOUDFLARE_AUTH_FAILED') throw error;
      return { limits: null, rows: [], problems: [{ code: 'authz', message: error.message, chunk: null }], queries: input.chunks.length, truncated: false };
    }
  }

  private combine(outcomes: readonly HostOutcome[], window: TrafficWindow, now: number): TrafficResult {
    const unavailable = outcomes.find((outcome) => !outcome.traffic.available);
    const plans = outcomes.map((outcome) => outcome.plan);
    const fallback = planChunks(now, WINDOW_SECONDS[window], null);
    const from = plans.length === 0 ? fallback.from : new Date(Math.min(...plans.map((plan) => plan.from.getTime())));
    const to = plans.length === 0 ? fallback.to : new Date(Math.max(...plans.map((plan) => plan.to.getTime())));
    return {
      window,
      from: from.toISOString(),
      to: to.toISOString(),
      available: unavailable === undefined,
      reason: unavailable?.traffic.reason ?? null,
      fix: unavailable?.fix ?? null,
      hostnames: outcomes.map((outcome) => outcome.traffic).sort((a, b) => a.hostname.localeCompare(b.hostname)),
      notes: [...new Set(outcomes.flatMap((outcome) => outcome.notes))],
      source: 'cloudflare-graphql-analytics',
    };
  }
}
