import { buildSchema, graphql, Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import type { EmulatedZone, EmulatorState } from '../emulator-state.ts';
import { isJsonObject } from '../../../json-guards.ts';
import type { TrafficBucket } from '../../traffic-log.ts';
import { adaptiveGroups, DIMENSIONS, isDimension, nodeError, type Dimension } from './adaptive-groups.ts';
import type { AnalyticsSource } from './analytics-limits.ts';

/**
 * Cloudflare's GraphQL Analytics API, the subset Tunnel Manager asks: `viewer.zones(filter).httpRequestsAdaptiveGroups`
 * and its `settings`, executed by the `graphql` reference implementation against this SDL (loaded only when a query
 * comes: graphql-route.ts). Type names are Cloudflare's where known.
 */
export const ANALYTICS_SDL = /* GraphQL */ `
scalar string
scalar Time
scalar Date
scalar uint64
scalar uint16

type Query {
  viewer: viewer
}

type viewer {
  zones(filter: ZoneFilter_InputObject!, limit: uint64): [zone!]!
}

input ZoneFilter_InputObject {
  zoneTag: string
  zoneTag_in: [string!]
}

type zone {
  zoneTag: string!
  settings: ZoneSettings
  httpRequestsAdaptiveGroups(
    filter: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!
    limit: uint64!
    orderBy: [ZoneHttpRequestsAdaptiveGroupsOrderBy!]
  ): [ZoneHttpRequestsAdaptiveGroups!]
}

type ZoneSettings {
  httpRequestsAdaptiveGroups: DatasetSettings!
}

type DatasetSettings {
  enabled: Boolean!
  maxDuration: uint64!
  notOlderThan: uint64!
  maxPageSize: uint64!
  availableFields: [string!]!
}

input ZoneHttpRequestsAdaptiveGroupsFilter_InputObject {
  AND: [ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!]
  OR: [ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!]
  datetime_geq: Time
  datetime_gt: Time
  datetime_lt: Time
  datetime_leq: Time
  clientRequestHTTPHost: string
  clientRequestHTTPHost_neq: string
  clientRequestHTTPHost_in: [string!]
  edgeResponseStatus: uint16
  edgeResponseStatus_neq: uint16
  edgeResponseStatus_geq: uint16
  edgeResponseStatus_gt: uint16
  edgeResponseStatus_lt: uint16
  edgeResponseStatus_leq: uint16
  edgeResponseStatus_in: [uint16!]
  requestSource: string
}

enum ZoneHttpRequestsAdaptiveGroupsOrderBy {
  count_ASC
  count_DESC
  sum_edgeResponseBytes_ASC
  sum_edgeResponseBytes_DESC
  sum_visits_ASC
  sum_visits_DESC
  clientRequestHTTPHost_ASC
  clientRequestHTTPHost_DESC
  date_ASC
  date_DESC
  datetimeHour_ASC
  datetimeHour_DESC
  datetimeFifteenMinutes_ASC
  datetimeFifteenMinutes_DESC
  datetimeFiveMinutes_ASC
  datetimeFiveMinutes_DESC
  datetimeMinute_ASC
  datetimeMinute_DESC
  edgeResponseStatus_ASC
  edgeResponseStatus_DESC
}

type ZoneHttpRequestsAdaptiveGroups {
  count: uint64!
  sum: ZoneHttpRequestsAdaptiveGroupsSum
  avg: ZoneHttpRequestsAdaptiveGroupsAvg
  dimensions: ZoneHttpRequestsAdaptiveGroupsDimensions
}

type ZoneHttpRequestsAdaptiveGroupsSum {
  edgeResponseBytes: uint64!
  visits: uint64!
}

type ZoneHttpRequestsAdaptiveGroupsAvg {
  sampleInterval: Float!
}

type ZoneHttpRequestsAdaptiveGroupsDimensions {
  clientRequestHTTPHost: string!
  date: Date!
  datetimeHour: Time!
  datetimeFifteenMinutes: Time!
  datetimeFiveMinutes: Time!
  datetimeMinute: Time!
  edgeResponseStatus: uint16!
}
`;

const schema = buildSchema(ANALYTICS_SDL);

/** Who asks, and what they may see. */
export interface AnalyticsRequest {
  state: EmulatorState;
  source: AnalyticsSource;
  /** The token holds Analytics Read. */
  mayRead: boolean;
}

/** The zone a host belongs to: the zone named by it or by its longest parent domain. */
function zoneOfHost(zones: readonly EmulatedZone[], host: string): EmulatedZone | undefined {
  let best: EmulatedZone | undefined;
  for (const zone of zones) {
    if ((host === zone.name || host.endsWith(`.${zone.name}`)) && zone.name.length > (best?.name.length ?? -1)) best = zone;
  }
  return best;
}

/** The dimension fields selected under `dimensions` (fragments included): the GROUP BY. */
function selectedDimensions(info: GraphQLResolveInfo): Set<Dimension> {
  const found = new Set<Dimension>();
  const visit = (selectionSet: SelectionSetNode | undefined, inDimensions: boolean): void => {
    for (const selection of selectionSet?.selections ?? []) {
      if (selection.kind === Kind.FIELD) {
        if (inDimensions && isDimension(selection.name.value)) found.add(selection.name.value);
        else if (!inDimensions && selection.name.value === 'dimensions') visit(selection.selectionSet, true);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet, inDimensions);
      } else {
        visit(info.fragments[selection.name.value]?.selectionSet, inDimensions);
      }
    }
  };
  for (const node of info.fieldNodes) visit(node.selectionSet, false);
  return found;
}

const notAuthorized = () => nodeError('authz', 'not authorized for that account');

/** One `zone` node: its datasets answer, or (no Analytics Read, or no such zone) each one is an authz error. */
function zoneNode(request: AnalyticsRequest, zoneTag: string): Record<string, unknown> {
  const zone = request.state.zones.find((candidate) => candidate.id === zoneTag);
  const limits = zone === undefined ? undefined : request.source.limits[zone.plan];
  const authorized = request.mayRead && zone !== undefined && limits !== undefined;
  const zoneBuckets = (from: number, to: number): TrafficBucket[] =>
    (request.source.traffic?.buckets(from, to) ?? []).filter((bucket) => zoneOfHost(request.state.zones, bucket.host)?.id === zoneTag);
  return {
    zoneTag,
    settings: () => {
      if (!authorized) throw notAuthorized();
      return { httpRequestsAdaptiveGroups: { ...limits, availableFields: [...DIMENSIONS, 'count', 'sum.edgeResponseBytes', 'sum.visits'] } };
    },
    httpRequestsAdaptiveGroups: (args: Record<string, unknown>, _context: unknown, info: GraphQLResolveInfo) => {
      if (!authorized) throw notAuthorized();
      return adaptiveGroups(zoneBuckets, { filter: args.filter, limit: args.limit, orderBy: args.orderBy, dimensions: selectedDimensions(info) }, limits);
    },
  };
}

function zoneTags(filter: unknown): string[] {
  if (!isJsonObject(filter)) return [];
  const tags = [filter.zoneTag, ...(Array.isArray(filter.zoneTag_in) ? filter.zoneTag_in : [])];
  return [...new Set(tags.filter((tag): tag is string => typeof tag === 'string'))];
}

/** Parses, validates and executes one GraphQL request body; the answer is GraphQL's JSON with `errors: null` when none. */
export async function executeAnalytics(body: unknown, request: AnalyticsRequest): Promise<Record<string, unknown>> {
  const fields = isJsonObject(body) ? body : {};
  if (typeof fields.query !== 'string') {
    return { data: null, errors: [{ message: 'the request body needs a "query" string', extensions: { code: 'bad_request', timestamp: new Date().toISOString() } }] };
  }
  const rootValue = {
    viewer: () => ({
      zones: (args: Record<string, unknown>) =>
        zoneTags(args.filter)
          .slice(0, typeof args.limit === 'number' ? args.limit : undefined)
          .map((tag) => zoneNode(request, tag)),
    }),
  };
  const result = await graphql({
    schema,
    source: fields.query,
    rootValue,
    variableValues: isJsonObject(fields.variables) ? fields.variables : undefined,
    operationName: typeof fields.operationName === 'string' ? fields.operationName : undefined,
  });
  return { data: result.data ?? null, errors: result.errors?.map((error) => error.toJSON()) ?? null };
}
