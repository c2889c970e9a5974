import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { targetUnreachableError } from '../../docker/target-selection.ts';
import type { CallHooks } from '../../contract/backend.ts';
import type { CnameUpdate, CnameUpdateResult } from '../../contract/routes.ts';
import { TunnelManagerError } from '../../errors.ts';
import type { Route } from '../../store/routes-repository.ts';
import { supervisorChild } from '../actors/supervisor-children.ts';
import { appliedOrThrow, requestIngressChange } from '../effects/ingress-effects.ts';
import type { BackendContext } from './context.ts';
import { routeNotFound } from './hostname.ts';
import { answeringOrAhead, chooseTarget, type TargetCheck, type TargetCheckWording } from './network.ts';
import { notServingSoon } from './tunnel-availability.ts';

/**
 * tunnel_update_cname: an active route moves to another port of its project and/or new origin settings, in place.
 * The new target is checked as a request's is (it must answer, or `publishAhead`); then the ledger row changes and
 * the ingress actor (config.yml's only writer) renders, writes and reloads it, as for a saga: the tunnel actor's
 * replica reload keeps the old rule serving until the new one is live. The DNS record is left alone. A failed cycle
 * puts the row back and has the ingress actor apply the old rule again (the saga's compensation), and says so.
 */

/** The route's target, ports and settings: what an update changes and what its undo puts back. */
type RouteTarget = Pick<Route, 'targetPort' | 'service' | 'targetReason' | 'originRequest' | 'awaitingServiceSince'>;

function targetOf(route: Route): RouteTarget {
  return { targetPort: route.targetPort, service: route.service, targetReason: route.targetReason, originRequest: route.originRequest, awaitingServiceSince: route.awaitingServiceSince };
}

/** The route an update may start on: in the ledger and active (a saga publishing or deleting it holds it `pending` or `deleting`). */
function updatableRoute(context: BackendContext, hostname: string): Route & { service: string } {
  const route = context.options.routes.find(hostname);
  if (!route) {
    throw routeNotFound(hostname, '; nothing was changed');
  }
  const { service } = route;
  if (route.status !== 'active' || service === null) {
    throw new TunnelManagerError({
      code: 'ROUTE_NOT_ACTIVE',
      message: `${hostname} is ${route.status}${service === null ? ' without a target' : ''}: only an active route can be moved; nothing was changed.`,
      fix:
        route.status === 'pending'
          ? 'Wait a few seconds until tunnel_list_cnames shows it `active`, then retry.'
          : `Publish it again (tunnel_delete_cname, then tunnel_request_cname with the port you want) or, for an adopted route, ask the meta-supervisor.`,
      details: { hostname, status: route.status },
    });
  }
  return { ...route, service };
}

/** Empty origin settings are the defaults: stored as none. */
function settingsOf(originRequest: Record<string, unknown> | undefined, current: Route['originRequest']): Route['originRequest'] {
  if (originRequest === undefined) return current;
  return Object.keys(originRequest).length === 0 ? null : originRequest;
}

/** The new port's target, checked as a request checks it: chosen from the topology, answering (or switched ahead). */
async function newTarget(context: BackendContext, route: Route, port: number, publishAhead: boolean): Promise<{ service: string; reason: string } & TargetCheck> {
  const { selection, cloudflared } = await chooseTarget(context, port, route.project);
  if (!selection.ok) throw targetUnreachableError(selection);
  const wording: TargetCheckWording = {
    done: 'switched',
    when: 'moved',
    verb: 'switch',
    outcome: `Nothing was changed: ${route.hostname} still serves ${route.service ?? 'its old target'}.`,
    details: { hostname: route.hostname },
  };
  const check = await answeringOrAhead(context, port, selection, cloudflared, publishAhead, wording);
  return { service: selection.target, reason: selection.reason, ...check };
}

/** What the update changes, or NOTHING_TO_CHANGE when it changes nothing. */
async function plannedTarget(context: BackendContext, route: Route & { service: string }, update: CnameUpdate): Promise<{ next: RouteTarget; warning: string | null }> {
  const port = update.targetPort ?? route.targetPort;
  const originRequest = settingsOf(update.originRequest, route.originRequest);
  const moves = port !== route.targetPort;
  if (!moves && isDeepStrictEqual(originRequest, route.originRequest)) {
    throw new TunnelManagerError({
      code: 'NOTHING_TO_CHANGE',
      message: `${route.hostname} already serves port ${route.targetPort ?? 'unknown'}${update.originRequest === undefined ? '' : ' with those origin settings'}; nothing was changed.`,
      fix: 'Pass `targetPort` with another port allocated to the route\'s project (port_list), and/or `originRequest` with different settings.',
      details: { hostname: route.hostname, targetPort: route.targetPort, originRequest: route.originRequest },
    });
  }
  if (!moves || port === null) return { next: { ...targetOf(route), originRequest }, warning: null };
  const chosen = await newTarget(context, route, port, update.publishAhead === true);
  // Switched ahead of the new service: the origin watch tells the owner when it first answers, as after publishAhead.
  const awaitingServiceSince = chosen.ahead ? Date.now() : null;
  return { next: { targetPort: port, service: chosen.service, targetReason: chosen.reason, originRequest, awaitingServiceSince }, warning: chosen.warning };
}

/** Has the ingress actor render the row as it is now, and waits for the cycle's outcome. */
async function applyRow(context: BackendContext, route: Route, service: string, requestId: string, undone: string): Promise<{ commit: string | null }> {
  const ingress = supervisorChild(context.options.supervisor(), 'ingress');
  const outcome = await requestIngressChange(ingress, { hostname: route.hostname, action: 'update', project: route.project, target: service, requestId });
  return appliedOrThrow(route.hostname, outcome, undone);
}

/**
 * The change failed: the row gets its old target back and the old rule is applied again; the error says so. A row
 * that another call changed meanwhile (deleted, or moved again) is left to that call.
 */
async function compensate(context: BackendContext, route: Route & { service: string }, next: RouteTarget, requestId: string, error: unknown): Promise<never> {
  const { routes } = context.options;
  const now = routes.find(route.hostname);
  if (now?.status === 'active' && now.service === next.service) routes.update(route.hostname, targetOf(route), Date.now());
  const failure = error instanceof TunnelManagerError ? error : new TunnelManagerError({ code: 'INTERNAL', message: String(error), fix: 'This is a bug in tunnel-manager: report it with the service log around this time.' });
  let restored: string;
  try {
    await applyRow(context, route, route.service, `${requestId}:undo`, 'The old target could not be applied again either.');
    restored = `${route.hostname} serves ${route.service} again, as before.`;
  } catch (undoError) {
    restored = `The old target is back in the ledger, but applying it failed too (${undoError instanceof Error ? undoError.message : String(undoError)}); the next ingress cycle renders it.`;
  }
  throw new TunnelManagerError({
    code: failure.code,
    message: `${route.hostname} was not moved: ${failure.message} ${restored}`,
    fix: failure.fix,
    details: { ...failure.details, hostname: route.hostname, restoredTarget: route.service, compensated: true },
    cause: failure,
  });
}

async function updateCname(context: BackendContext, update: CnameUpdate, hooks: CallHooks): Promise<CnameUpdateResult> {
  const { routes, bus } = context.options;
  const route = updatableRoute(context, update.hostname);
  const { next, warning } = await plannedTarget(context, route, update);
  const down = notServingSoon(context.tunnelSnapshot(), Date.now(), { outcome: 'Nothing was changed.' });
  if (down !== null) throw down;
  const service = next.service ?? route.service;
  hooks.progress?.(`moving ${route.hostname}: ${route.service} → ${service}`);
  const requestId = randomUUID();
  routes.update(route.hostname, next, Date.now());
  let commit: string | null;
  try {
    ({ commit } = await applyRow(context, route, service, requestId, 'Nothing was changed.'));
  } catch (error) {
    return compensate(context, route, next, requestId, error);
  }
  const updatedAt = routes.find(route.hostname)?.updatedAt ?? Date.now(); // the row as the cycle left it
  const previous = { targetPort: route.targetPort, target: route.service };
  bus.publish('route.updated', route.project, { hostname: route.hostname, from: previous, to: { targetPort: next.targetPort, target: service }, originRequest: next.originRequest, commit });
  return {
    hostname: route.hostname,
    url: `https://${route.hostname}`,
    targetPort: next.targetPort,
    target: service,
    reason: next.targetReason,
    previous,
    originRequest: next.originRequest,
    commit,
    warning,
    updatedAt: new Date(updatedAt).toISOString(),
  };
}

/** ROUTE_BUSY: another call is moving the same route right now. */
function beingMoved(hostname: string): TunnelManagerError {
  return new TunnelManagerError({
    code: 'ROUTE_BUSY',
    message: `${hostname} is being moved right now by another call; nothing was changed.`,
    fix: 'Wait until that call answers (tunnel_list_cnames then shows the target it left), then retry if the route still needs to change.',
    details: { hostname, status: 'moving' },
  });
}

/**
 * One move of a route at a time: a second call for the same hostname while the first runs is refused (ROUTE_BUSY),
 * so two moves never interleave their rows, reloads and compensations.
 */
export function backendUpdateRoute(context: BackendContext): { updateCname: (update: CnameUpdate, hooks?: CallHooks) => Promise<CnameUpdateResult> } {
  const moving = new Set<string>();
  return {
    updateCname: async (update, hooks = {}) => {
      const hostname = update.hostname.toLowerCase();
      if (moving.has(hostname)) throw beingMoved(hostname);
      moving.add(hostname);
      try {
        return await updateCname(context, update, hooks);
      } finally {
        moving.delete(hostname);
      }
    },
  };
}
