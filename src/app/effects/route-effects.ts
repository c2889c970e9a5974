import { fromPromise } from 'xstate';
import type { MarkDeletingOutput, RouteErrorShape, RouteMachine, StepInput } from '../../../machines/route.machine.ts';
import type { CloudflareProvider } from '../../cloudflare/cloudflare-provider.ts';
import { acceptedPlanOf } from '../../cloudflare/record-plan.ts';
import { appliedOrThrow, requestIngressChange, type IngressActor } from './ingress-effects.ts';
import { runForService } from '../../request-context.ts';
import { TunnelManagerError } from '../../errors.ts';
import type { AuditRepository } from '../../store/audit-repository.ts';
import type { DomainsRepository } from '../../store/domains-repository.ts';
import type { Route, RoutesRepository, RouteStatus } from '../../store/routes-repository.ts';
import { DELETE_RETRY_DELAYS_MS, describeDeleteRetries, nextDeleteRetryAt } from '../schedules/delete-retry.ts';
import { routeQuotaExceeded } from '../use-cases/route-quota.ts';
import type { EventBus } from '../actors/event-bus.ts';

export interface RouteEffectsOptions {
  routes: RoutesRepository;
  domains: DomainsRepository;
  provider: CloudflareProvider;
  /** The running ingress actor (the supervisor's child). */
  ingress: () => IngressActor;
  /** Resolves once cloudflared is running and ready; rejects with TUNNEL_NOT_RUNNING after the timeout. */
  tunnelReady: () => Promise<void>;
  bus: EventBus;
  audit: AuditRepository;
  /** `limits.routesPerProject` (0: no limit), enforced again by the reservation itself. */
  routesPerProject: number;
  /** When a delete whose DNS record could not be deleted is tried again (default DELETE_RETRY_DELAYS_MS; tests shorten it). */
  deleteRetryDelaysMs?: readonly number[];
  now?: () => number;
}

function isUniqueViolation(error: unknown): boolean {
  const code: unknown = error instanceof Error ? Reflect.get(error, 'code') : undefined;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Every status a route row may have: checked by the compiler against the store's type. */
const ROUTE_STATUSES: Record<RouteStatus, true> = { pending: true, active: true, deleting: true, failed: true, adopted: true };

function isRouteStatus(status: string): status is RouteStatus {
  return Object.hasOwn(ROUTE_STATUSES, status);
}

/** The status a saga kept of the row before its removal (persisted with the saga: read back as an outside value). */
function routeStatusOf(status: string): RouteStatus {
  if (isRouteStatus(status)) return status;
  throw new TunnelManagerError({
    code: 'INTERNAL',
    message: `The removal saga kept the route's earlier status as ${JSON.stringify(status)}, which is no route status.`,
    fix: 'This is a bug in tunnel-manager. The route stays `deleting`; report it with the service log around this time.',
    details: { status },
  });
}

/** What every step works with: the options, with the clock settled. */
type Steps = RouteEffectsOptions & { now: () => number; deleteRetryDelaysMs: readonly number[] };

/** Asks the ingress actor to render from the ledger and waits for the outcome of the cycle that carried it. */
async function ingressChange(steps: Steps, input: StepInput, action: 'add' | 'remove'): Promise<{ commit: string | null }> {
  const { request } = input;
  const outcome = await requestIngressChange(steps.ingress(), {
    hostname: request.hostname,
    action,
    project: request.project,
    target: request.service,
    requestId: `${request.requestId}:${action}`,
  });
  return appliedOrThrow(request.hostname, outcome, 'Nothing was published.');
}

/**
 * Reserves the name: inserts the `pending` row this saga holds (a re-run finds its own reservation), within the
 * project's route quota, counted in the same transaction (the request's early check raced its parallel siblings).
 */
async function reserveRoute({ routes, now, routesPerProject }: Steps, { request }: StepInput): Promise<void> {
  // Yield first: the runner persists the new saga right after starting it, so the reservation below never
  // exists without a persisted saga that owns it.
  await Promise.resolve();
  if (routes.find(request.hostname)?.requestId === request.requestId) return; // our own reservation, before a restart
  let reserved: ReturnType<RoutesRepository['insertWithinQuota']>;
  try {
    reserved = routes.insertWithinQuota(
      {
        hostname: request.hostname,
        zoneId: request.zoneId,
        zoneName: request.zoneName,
        project: request.project,
        targetPort: request.targetPort,
        service: null,
        targetReason: request.targetReason,
        path: null,
        originRequest: request.originRequest,
        dnsRecordId: null,
        dnsCreated: false,
        status: 'pending',
        source: 'request',
        expiresAt: request.expiresAt,
        requestId: request.requestId,
        awaitingServiceSince: request.awaitingService === true ? now() : null,
        at: now(),
      },
      routesPerProject,
    );
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const holder = routes.find(request.hostname);
    throw new TunnelManagerError({
      code: 'HOSTNAME_TAKEN',
      message:
        holder?.status === 'pending'
          ? `${request.hostname} is being published by another request right now (${holder.project}).`
          : `${request.hostname} is already published by ${holder?.project ?? 'another project'}.`,
      fix: 'Choose another subdomain, or list your routes with tunnel_list_cnames.',
      details: { hostname: request.hostname, owner: holder?.project ?? null, status: holder?.status ?? null },
    });
  }
  if (!reserved.inserted) throw routeQuotaExceeded(request.project, reserved.held, routesPerProject);
}

/**
 * Deletes the record a failed create may have made, and says what it found. Clean-up is the service's work: a
 * project's spent Cloudflare share must never leave a record behind. Once no record of ours is left the row says so;
 * otherwise it keeps `dnsCreated` and the release keeps the row for the retry schedule. RECORD_NOT_OWNED means the
 * name holds only records that are not ours (the create lost a race, Cloudflare refused it): nothing of ours is left.
 */
async function undoFailedCreate({ routes, provider, now }: Steps, request: StepInput['request']): Promise<string> {
  const noneLeft = (said: string) => {
    routes.update(request.hostname, { dnsRecordId: null, dnsCreated: false }, now());
    return said;
  };
  try {
    const outcome = await runForService(() => provider.deleteOwnedCname({ zoneId: request.zoneId, hostname: request.hostname, owner: request.project }));
    return noneLeft(outcome.deleted ? 'deleted the record the failed create had made' : 'no record had been made');
  } catch (cleanupError) {
    if (cleanupError instanceof TunnelManagerError && cleanupError.code === 'RECORD_NOT_OWNED') return noneLeft('no record had been made: the name holds only records that are not ours');
    return `could not check for a record the failed create may have made: ${cleanupError instanceof Error ? cleanupError.message : String(cleanupError)}`;
  }
}

/** Makes sure the marked, proxied CNAME exists, and records whether this saga created it. */
async function ensureDnsRecord(steps: Steps, { request }: StepInput): Promise<{ recordId: string; created: boolean }> {
  const { routes, provider, domains, now } = steps;
  const zonePlan = domains.findById(request.zoneId)?.plan ?? null;
  // Only a record this saga created may be deleted by its rollback. The intent is written to the ledger row
  // BEFORE the create is sent: a create whose answer was lost, or a step re-run after a restart, still knows
  // the record it finds is its own; a record of ours that was there before (left by an earlier route of the
  // same owner) is reused and never deleted.
  const held = routes.find(request.hostname);
  const sentBefore = held?.requestId === request.requestId && held.dnsCreated;
  let sentNow = false;
  const ensure = {
    zoneId: request.zoneId,
    hostname: request.hostname,
    owner: request.project,
    zonePlan,
    beforeCreate: () => {
      sentNow = true;
      routes.update(request.hostname, { dnsCreated: true }, now());
    },
  };
  try {
    // The plan the request made (once, in its check) is carried out as it is: the registry re-checks only the race
    // (a create answered "exists" looks again and takes the record only if it is ours), and a retry after a transient
    // failure looks afresh. A saga without one (started by an older version) plans here.
    const carried = acceptedPlanOf(request.dnsPlan);
    const result = carried === null ? await provider.ensureCname(ensure) : await provider.carryOut(ensure, carried);
    const created = sentBefore || sentNow || result.created;
    routes.update(request.hostname, { dnsRecordId: result.record.id, dnsCreated: created }, now());
    return { recordId: result.record.id, created };
  } catch (error) {
    if (!sentBefore && !sentNow) throw error;
    // A create was sent and the step still failed (e.g. its answer was lost, then Cloudflare stayed
    // unavailable): the record may exist. Undo it here, since the saga has no record id to compensate with.
    const cleanup = await undoFailedCreate(steps, request);
    if (error instanceof TunnelManagerError) {
      throw new TunnelManagerError({ code: error.code, message: error.message, fix: error.fix, details: { ...error.details, cleanup }, cause: error });
    }
    throw error;
  }
}

/** Sets the route's service and has the ingress actor add its rule. */
async function applyIngress(steps: Steps, input: StepInput): Promise<{ commit: string | null }> {
  const { request } = input;
  steps.routes.update(request.hostname, { service: request.service, targetReason: request.targetReason, originRequest: request.originRequest }, steps.now());
  return ingressChange(steps, input, 'add');
}

/** The route serves: `active`, and its owner is told. */
async function activateRoute({ routes, bus, now }: Steps, { request }: StepInput): Promise<void> {
  const route = routes.update(request.hostname, { status: 'active' }, now());
  bus.publish('route.created', request.project, {
    hostname: request.hostname,
    url: `https://${request.hostname}`,
    target: request.service,
    reason: request.targetReason,
    dnsRecordId: route?.dnsRecordId ?? null,
  });
}

/** A removal starts: the row becomes `deleting`, held by this saga; answers the record to delete and the row before. */
async function markDeleting(steps: Steps, input: StepInput): Promise<MarkDeletingOutput> {
  const { routes, now } = steps;
  const route = routes.find(input.request.hostname);
  if (!route) {
    throw new TunnelManagerError({
      code: 'ROUTE_NOT_FOUND',
      message: `${input.request.hostname} is not in the ledger.`,
      fix: 'List the routes with tunnel_list_cnames; nothing was changed.',
      details: { hostname: input.request.hostname },
    });
  }
  // A retried delete (the row already `deleting`) keeps what the first attempt found as "the row before".
  const previous = route.status === 'deleting' && input.previous ? input.previous : { status: route.status, service: route.service };
  // A create whose answer was lost may have made a record the row has no id for: look for ours by name (a failure
  // here changes nothing, and the delete is retried).
  const recordId = route.dnsRecordId ?? (route.dnsCreated ? await ourRecordId(steps, route) : null);
  routes.update(route.hostname, { status: 'deleting', requestId: input.request.requestId, lastError: null }, now());
  // Adopted records have no marker: the ledger's record id is what lets the owner delete that one record.
  return { recordId, created: recordId !== null && (route.dnsCreated || route.source === 'adopted'), previous };
}

/** The id of the record of ours (marked for the route's project, pointing at our tunnel) named like the route, or null. */
async function ourRecordId({ provider }: Steps, route: Route): Promise<string | null> {
  const records = await runForService(() => provider.findRecords(route.zoneId, route.hostname));
  const ours = records.find((record) => {
    const ownership = provider.ownership(record);
    return ownership.kind === 'ours' && ownership.owner === route.project;
  });
  return ours?.id ?? null;
}

/** A removal whose rule could not be removed: the row goes back to what it was, and its rule is rendered again. */
async function restoreRoute(steps: Steps, input: StepInput): Promise<void> {
  const { request, previous, error } = input;
  const route = steps.routes.find(request.hostname);
  if (!route || route.requestId !== request.requestId || previous === null) return;
  // The rule could not be removed, so it still serves: the row goes back to what it was, nothing was deleted.
  steps.routes.update(route.hostname, { status: routeStatusOf(previous.status), service: previous.service, requestId: null, lastError: error ? `${error.code}: ${error.message}` : null }, steps.now());
  // "Could not be removed" may be a retry after a crash whose first attempt did remove it (the cycle finished,
  // the manager died before the saga moved on). The row is back, so the rule must be too: render it again (no
  // change when it is there). Without this, an active route could sit without a rule until some other cycle.
  if (previous.service !== null) await ingressChange(steps, { ...input, request: { ...request, service: previous.service } }, 'add');
}

/**
 * A route whose DNS record could not be deleted: the row stays (or becomes) `deleting` with no saga holding it, so
 * every tool lists it, the retry schedule deletes the record (its next attempt backs off: delete-retry.ts), and the
 * owner may retry at once; the owner is told when.
 */
function keepRowForRetry(steps: Steps, hostname: string, lastError: string, requestId: string, error: RouteErrorShape | null): void {
  const { routes, bus, audit, now } = steps;
  const attempts = (routes.find(hostname)?.deleteAttempts ?? 0) + 1;
  const nextRetryAt = nextDeleteRetryAt(attempts, now(), error, steps.deleteRetryDelaysMs);
  const route = routes.update(hostname, { status: 'deleting', requestId: null, service: null, lastError, deleteAttempts: attempts, nextRetryAt }, now());
  if (!route) return;
  const inSeconds = Math.max(1, Math.round((nextRetryAt - now()) / 1000));
  bus.publish('route.delete_failed', route.project, {
    hostname: route.hostname,
    error: lastError,
    attempts,
    nextRetryAt: new Date(nextRetryAt).toISOString(),
    fix: `The rule is removed; the DNS record is deleted by itself: the next attempt is in ${inSeconds} s (${describeDeleteRetries(steps.deleteRetryDelaysMs)}), until it is gone. tunnel_delete_cname { "hostname": "${route.hostname}" } retries now.`,
  });
  audit.record({ ts: now(), principal: 'system', action: 'route.delete_failed', target: route.hostname, outcome: 'error', details: { requestId, code: error?.code ?? null, attempts } });
}

/** A removal whose DNS record could not be deleted: the row stays `deleting`, free for the retry schedule. */
async function keepForRetry(steps: Steps, { request, error }: StepInput): Promise<void> {
  if (!steps.routes.find(request.hostname)) return;
  const lastError = error ? `${error.code}: ${error.message}` : 'the DNS record could not be deleted';
  keepRowForRetry(steps, request.hostname, lastError, request.requestId, error);
}

async function removeIngressRule(steps: Steps, input: StepInput): Promise<{ commit: string | null }> {
  steps.routes.update(input.request.hostname, { service: null }, steps.now());
  return ingressChange(steps, input, 'remove');
}

/**
 * A delete, and the undo of a failed request, are the service's work rather than the project's: a project's spent
 * Cloudflare share must never leave a half-removed route or a record behind (src/request-context.ts).
 */
async function deleteDnsRecord({ routes, provider, now }: Steps, input: StepInput): Promise<void> {
  const { request } = input;
  const route = routes.find(request.hostname);
  await runForService(() =>
    provider.deleteOwnedCname({
      zoneId: request.zoneId,
      hostname: request.hostname,
      owner: route?.project ?? request.project,
      adoptedRecordId: route?.source === 'adopted' ? input.dnsRecordId : null,
    }),
  );
  // No record of ours is left: a failed provision's release may give the name back.
  if (route?.requestId === request.requestId) routes.update(request.hostname, { dnsRecordId: null, dnsCreated: false }, now());
}

/**
 * A failed provision gives the name back, if this saga still holds it, unless a record it created may still exist
 * (its deletion failed): then the row stays, `deleting`, so the record is never left where no tool can see it.
 */
async function releaseReservation(steps: Steps, { request, compensationErrors }: StepInput): Promise<void> {
  const route = steps.routes.find(request.hostname);
  if (route?.requestId !== request.requestId) return;
  if (!route.dnsCreated) {
    steps.routes.remove(request.hostname);
    return;
  }
  const failure = compensationErrors.at(-1);
  const lastError = failure
    ? `${failure.code}: the undo of the failed request could not delete its DNS record: ${failure.message}`
    : 'the undo of the failed request could not confirm that its DNS record is gone';
  keepRowForRetry(steps, request.hostname, lastError, request.requestId, failure ?? null);
}

/** A finished removal: the row goes, the owner is told, the audit log keeps it. */
async function forgetRoute({ routes, bus, audit, now }: Steps, input: StepInput): Promise<void> {
  const { request } = input;
  const route = routes.find(request.hostname);
  if (route) routes.remove(request.hostname);
  bus.publish('route.deleted', route?.project ?? request.project, { hostname: request.hostname });
  audit.record({
    ts: now(),
    principal: 'system',
    action: 'route.deleted',
    target: request.hostname,
    outcome: 'ok',
    details: { requestId: request.requestId, dnsRecordId: input.dnsRecordId },
  });
}

/**
 * The route saga's steps, each idempotent: a restored saga re-runs the step it was in.
 * The ledger row is the reservation; its `request_id` says which saga holds it.
 */
export function provideRouteEffects(machine: RouteMachine, options: RouteEffectsOptions): RouteMachine {
  const steps: Steps = { ...options, now: options.now ?? Date.now, deleteRetryDelaysMs: options.deleteRetryDelaysMs ?? DELETE_RETRY_DELAYS_MS };
  const step = <T>(run: (steps: Steps, input: StepInput) => Promise<T>) => fromPromise<T, StepInput>(({ input }) => run(steps, input));
  return machine.provide({
    actors: {
      reserveRoute: step(reserveRoute),
      ensureDnsRecord: step(ensureDnsRecord),
      applyIngress: step(applyIngress),
      awaitTunnelReady: step(async () => options.tunnelReady()),
      activateRoute: step(activateRoute),
      markDeleting: step(markDeleting),
      restoreRoute: step(restoreRoute),
      keepForRetry: step(keepForRetry),
      removeIngressRule: step(removeIngressRule),
      deleteDnsRecord: step(deleteDnsRecord),
      releaseReservation: step(releaseReservation),
      forgetRoute: step(forgetRoute),
    },
  });
}
