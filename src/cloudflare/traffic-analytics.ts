import { z } from 'zod';
import type { CloudflareClient } from './client.ts';

/**
 * Traffic per hostname from Cloudflare's GraphQL Analytics API (`POST /client/v4/graphql`): the zone dataset of HTTP
 * requests, `httpRequestsAdaptiveGroups`, grouped by hostname, hour and status. It needs the token's Analytics Read
 * permission. One request asks one zone, with one dataset node per time chunk (a plan caps how wide one node's range
 * may be: `maxDuration`) and, when asked, the dataset's `settings` node, which says that cap and how far back the plan
 * may read (`notOlderThan`). Each node counts as one query against Cloudflare's GraphQL quota (300 per 5 minutes).
 *
 * Cloudflare answers GraphQL errors with HTTP 200 and an `errors` list whose `path` names the node that failed; a node
 * that failed has no rows, the others keep theirs.
 */

export interface TrafficQueryInput {
  zoneId: string;
  /** Lower-case hostnames of the zone. */
  hostnames: readonly string[];
  /** Consecutive time ranges, each within the plan's maxDuration. */
  chunks: readonly { from: Date; to: Date }[];
  /** Ask the dataset's settings node too. */
  withLimits: boolean;
}

/** What the plan allows for the dataset (its settings node). */
export interface DatasetLimits {
  enabled: boolean;
  maxDurationSeconds: number;
  notOlderThanSeconds: number;
  maxPageSize: number;
}

/** One group: requests of one hostname, in one hour, answered with one status. */
export interface TrafficRow {
  hostname: string;
  /** The hour's start, ISO 8601. */
  hour: string;
  status: number;
  requests: number;
  bytes: number;
}

/** A GraphQL error: Cloudflare's code (`authz`: the token may not read analytics), its message, and the chunk it hit. */
export interface TrafficProblem {
  code: string;
  message: string;
  /** The chunk's index, or null when the error is not about one chunk (the settings node, the whole query). */
  chunk: number | null;
}

export interface ZoneTrafficAnswer {
  limits: DatasetLimits | null;
  rows: TrafficRow[];
  problems: TrafficProblem[];
  /** How many dataset nodes the request asked (each counts against the GraphQL quota). */
  queries: number;
  /** A node answered a full page: it may have had more rows than it could send. */
  truncated: boolean;
}

/** Rows asked per node: the dataset's page size on every plan. */
export const TRAFFIC_PAGE_SIZE = 10_000;

const GROUP_FIELDS = 'count sum { edgeResponseBytes } dimensions { clientRequestHTTPHost datetimeHour edgeResponseStatus }';
const FILTER_TYPE = 'ZoneHttpRequestsAdaptiveGroupsFilter_InputObject';

/** Cloudflare's `Time`: RFC 3339 in UTC, to the second ("2026-12-07T10:00:00Z"). */
const timeOf = (at: Date): string => `${at.toISOString().slice(0, 19)}Z`;

/** The query text and its variables: values travel only as variables, never spliced into the text. */
export function trafficQuery(input: TrafficQueryInput): { query: string; variables: Record<string, unknown> } {
  const variables: Record<string, unknown> = { zoneTag: input.zoneId };
  const declarations = ['$zoneTag: string!'];
  const nodes: string[] = [];
  input.chunks.forEach((chunk, index) => {
    declarations.push(`$f${index}: ${FILTER_TYPE}!`);
    variables[`f${index}`] = {
      datetime_geq: timeOf(chunk.from),
      datetime_lt: timeOf(chunk.to),
      clientRequestHTTPHost_in: [...input.hostnames],
      requestSource: 'eyeball',
    };
    nodes.push(`c${index}: httpRequestsAdaptiveGroups(limit: ${TRAFFIC_PAGE_SIZE}, filter: $f${index}, orderBy: [datetimeHour_ASC]) { ${GROUP_FIELDS} }`);
  });
  const settings = input.withLimits ? 'settings { httpRequestsAdaptiveGroups { enabled maxDuration notOlderThan maxPageSize } } ' : '';
  const query = `query TunnelManagerTraffic(${declarations.join(', ')}) { viewer { zones(filter: { zoneTag: $zoneTag }) { ${settings}${nodes.join(' ')} } } }`;
  return { query, variables };
}

const Group = z.object({
  count: z.number(),
  sum: z.object({ edgeResponseBytes: z.number() }),
  dimensions: z.object({ clientRequestHTTPHost: z.string(), datetimeHour: z.string(), edgeResponseStatus: z.number() }),
});
const Settings = z.object({ enabled: z.boolean(), maxDuration: z.number(), notOlderThan: z.number(), maxPageSize: z.number() });
const GraphqlError = z.object({
  message: z.string(),
  path: z.array(z.union([z.string(), z.number()])).nullish(),
  extensions: z.object({ code: z.string().optional() }).passthrough().nullish(),
});
const Answer = z.object({
  data: z
    .object({
      viewer: z
        .object({ zones: z.array(z.record(z.unknown())).nullish() })
        .nullish(),
    })
    .nullish(),
  errors: z.array(GraphqlError).nullish(),
});

/** The chunk a node's error names (`…, "c3", …` in its path), or null. */
function chunkOfPath(path: readonly (string | number)[] | null | undefined): number | null {
  const node = path?.find((part) => typeof part === 'string' && /^c\d+$/.test(part));
  return typeof node === 'string' ? Number(node.slice(1)) : null;
}

function rowsOf(zone: Record<string, unknown>, chunks: number): { rows: TrafficRow[]; truncated: boolean } {
  const rows: TrafficRow[] = [];
  let truncated = false;
  for (let index = 0; index < chunks; index += 1) {
    const groups = z.array(Group).safeParse(zone[`c${index}`]);
    if (!groups.success) continue;
    if (groups.data.length >= TRAFFIC_PAGE_SIZE) truncated = true;
    for (const group of groups.data) {
      rows.push({
        hostname: group.dimensions.clientRequestHTTPHost.toLowerCase(),
        hour: new Date(group.dimensions.datetimeHour).toISOString(),
        status: group.dimensions.edgeResponseStatus,
        requests: group.count,
        bytes: group.sum.edgeResponseBytes,
      });
    }
  }
  return { rows, truncated };
}

function limitsOf(zone: Record<string, unknown>): DatasetLimits | null {
  const settings = z.object({ httpRequestsAdaptiveGroups: Settings.nullish() }).safeParse(zone.settings);
  const found = settings.success ? settings.data.httpRequestsAdaptiveGroups : null;
  if (!found) return null;
  return { enabled: found.enabled, maxDurationSeconds: found.maxDuration, notOlderThanSeconds: found.notOlderThan, maxPageSize: found.maxPageSize };
}

/** Reads an answer of `trafficQuery`: rows of the nodes that answered, the limits, and each error with its chunk. */
export function readTrafficAnswer(body: unknown, chunks: number): ZoneTrafficAnswer {
  const parsed = Answer.safeParse(body);
  if (!parsed.success) {
    const problem = { code: 'unreadable', message: `the answer is not a GraphQL answer: ${parsed.error.issues[0]?.message ?? 'unknown shape'}`, chunk: null };
    return { limits: null, rows: [], problems: [problem], queries: chunks, truncated: false };
  }
  const problems = (parsed.data.errors ?? []).map((error) => ({ code: error.extensions?.code ?? 'unknown', message: error.message, chunk: chunkOfPath(error.path) }));
  const zone = parsed.data.data?.viewer?.zones?.[0];
  if (zone === undefined) return { limits: null, rows: [], problems, queries: chunks, truncated: false };
  return { limits: limitsOf(zone), ...rowsOf(zone, chunks), problems, queries: chunks };
}

/** One request for one zone's traffic, through the SDK client (the shared rate limiter counts it, as every call). */
export async function fetchZoneTraffic(client: CloudflareClient, input: TrafficQueryInput): Promise<ZoneTrafficAnswer> {
  const body: unknown = await client.post('/graphql', { body: trafficQuery(input) });
  return readTrafficAnswer(body, input.chunks.length);
}
