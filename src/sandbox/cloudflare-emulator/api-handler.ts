import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiFailure, apiFailures, successEnvelope } from './api-envelope.ts';
import type { ActiveFault, FaultBoard } from './faults.ts';
import { bearer, readBody, send, sleep } from './http-exchange.ts';
import type { RequestLog, RequestLogEntry } from './request-log.ts';
import { routeRequest } from './request-router.ts';
import type { RouteHandler, Scope } from './routes/route-context.ts';
import type { StateStore } from './state-store.ts';
import type { AnalyticsSource } from './analytics/analytics-limits.ts';

/** One API request under /client/v4: route, fault, token, handler, answer, and its line in the request log. */

export const API_PREFIX = '/client/v4';

export interface ApiContext {
  store: StateStore;
  faults: FaultBoard;
  log: RequestLog;
  scopesOf: ReadonlyMap<string, ReadonlySet<Scope>>;
  analytics: AnalyticsSource;
}

/** The fault's effect before the handler runs: latency, a dropped connection, or a 429/5xx answer. */
async function applyFaultBefore(fault: ActiveFault | undefined, request: IncomingMessage, entry: RequestLogEntry): Promise<'dropped' | 'go'> {
  if (fault === undefined) return 'go';
  if (fault.latencyMs) await sleep(fault.latencyMs);
  if (fault.drop === 'before') {
    entry.status = 'dropped';
    request.socket.destroy();
    return 'dropped';
  }
  if (fault.status === 429) throw apiFailures.rateLimited(fault.retryAfterSeconds ?? 1);
  if (fault.status !== undefined) throw apiFailures.internal(fault.status);
  return 'go';
}

/** 10000 and friends: the bearer token must be known and hold the handler's permission; its permissions. */
function authorize(context: ApiContext, request: IncomingMessage, handler: RouteHandler): ReadonlySet<Scope> {
  const presented = bearer(request);
  if (presented === undefined || presented === null) throw apiFailures.malformedAuthorization();
  const scopes = context.scopesOf.get(presented);
  if (scopes === undefined) throw apiFailures.invalidToken();
  if (handler.scope !== 'self' && !scopes.has(handler.scope)) throw apiFailures.missingPermission();
  return scopes;
}

export async function handleApi(context: ApiContext, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
  const method = request.method ?? 'GET';
  const path = url.pathname.slice(API_PREFIX.length) || '/';
  const match = routeRequest(method, path);
  if (match.kind === 'no-route') throw apiFailures.noRoute(url.pathname);
  if (match.kind === 'wrong-method') throw apiFailures.methodNotAllowed();

  const fault = context.faults.take(match.pattern);
  const entry: RequestLogEntry = { at: Date.now(), method, route: match.pattern, path, status: 200, ...(fault ? { fault } : {}) };
  try {
    if ((await applyFaultBefore(fault, request, entry)) === 'dropped') return;
    const scopes = authorize(context, request, match.handler);
    const body = await readBody(request);
    const answer = await match.handler.handle({
      params: match.params,
      query: url.searchParams,
      body,
      path: url.pathname,
      store: context.store,
      scopes,
      analytics: context.analytics,
    });
    if (fault?.drop === 'after') {
      entry.status = 'dropped';
      request.socket.destroy();
      return;
    }
    entry.status = answer.status ?? 200;
    send(response, entry.status, 'raw' in answer ? answer.raw : successEnvelope(answer.result, answer.resultInfo));
  } catch (error) {
    if (error instanceof ApiFailure) entry.status = error.status;
    throw error;
  } finally {
    context.log.record(entry);
  }
}
