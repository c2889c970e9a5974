import type { ResultInfo } from '../api-envelope.ts';
import { apiFailures } from '../api-envelope.ts';
import type { EmulatedZone } from '../emulator-state.ts';
import type { StateStore } from '../state-store.ts';
import type { AnalyticsSource } from '../analytics/analytics-limits.ts';
import { isJsonObject } from '../../../json-guards.ts';

/** What an API token may do in the emulator (the permission groups the adapter needs; `analytics:read`: "Analytics Read"). */
export type Scope = 'zone:read' | 'dns:read' | 'dns:edit' | 'tunnel:read' | 'tunnel:edit' | 'analytics:read';
export const ALL_SCOPES: readonly Scope[] = ['zone:read', 'dns:read', 'dns:edit', 'tunnel:read', 'tunnel:edit', 'analytics:read'];

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body; undefined for requests without one. */
  body: unknown;
  /** The API path (after /client/v4), for error messages. */
  path: string;
  store: StateStore;
  /** The presented token's permissions (a route whose answer depends on them, e.g. GraphQL Analytics, reads them). */
  scopes: ReadonlySet<Scope>;
  /** The traffic the sandbox edge recorded and the per-plan dataset limits, for GraphQL Analytics. */
  analytics: AnalyticsSource;
}

/** An answer in the v4 envelope (`result`), or a body sent as it is (`raw`: GraphQL answers have no envelope). */
export type RouteAnswer = { status?: number; result: unknown; resultInfo?: ResultInfo } | { status?: number; raw: Record<string, unknown> };

export interface RouteHandler {
  /** The permission the token needs; `self`: any valid token (it asks about itself). */
  scope: Scope | 'self';
  handle(context: RouteContext): RouteAnswer | Promise<RouteAnswer>;
}

/** The zone named by `:zone`, or 7003 as Cloudflare answers for an unknown identifier. */
export function zoneFromPath(context: RouteContext): EmulatedZone {
  const zone = context.store.state.zones.find((z) => z.id === context.params.zone);
  if (zone === undefined) throw apiFailures.objectNotFound(context.path);
  return zone;
}

/** The JSON body as an object, or 9207 when it is missing or not an object. */
export function bodyObject(context: RouteContext): Record<string, unknown> {
  const body = context.body;
  if (!isJsonObject(body)) throw apiFailures.invalidJson();
  return body;
}
