import { randomUUID } from 'node:crypto';
import type { RouteErrorShape, RouteRequest } from '../../../machines/route.machine.ts';
import { recordExistsError } from '../../cloudflare/record-errors.ts';
import type { AcceptedPlan } from '../../cloudflare/record-plan.ts';
import { targetUnreachableError, type TargetChosen, type TargetSelection } from '../../docker/target-selection.ts';
import type { CallHooks } from '../../contract/backend.ts';
import { orphanScanResultSchema, type CnameRequest, type CnameResult, type DeleteResult, type OrphanScanResult } from '../../contract/routes.ts';
import { TunnelManagerError } from '../../errors.ts';
import { parseHostname, type Hostname } from '../../hostname.ts';
import type { Domain } from '../../store/domains-repository.ts';
import type { Route } from '../../store/routes-repository.ts';
import type { BackendContext, ManagerBackend } from './context.ts';
import { answeringOrAhead, chooseTarget } from './network.ts';
import { describeDeleteRetries } from '../schedules/delete-retry.ts';
import { hostnameProblems, requestedHostname, routeNotFound } from './hostname.ts';
import { routeQuotaExceeded } from './route-quota.ts';
import { ask, type Outcome } from '../../actor-ask.ts';
import { supervisorChild } from '../actors/supervisor-children.ts';
import { notServingSoon } from './tunnel-availability.ts';

/** The backend's routes part: publishing and deleting CNAMEs, the ledger's reads, the zones, the orphan scan. */

function zoneFor(context: BackendContext, domain: string | undefined): Domain {
  const { config, domains, zones } = context.options;
  // The contract gives a Hostname already; the label watcher and the expiry schedule call the backend directly.
  const asked = domain ?? config.tunnel.defaultZone;
  const name = parseHostname(asked) ?? asked;
  const zone = domains.findByName(name);
  if (!zone) {
    const known = zones.list().map((z) => z.name);
    throw new TunnelManagerError({
      code: 'ZONE_NOT_FOUND',
      message:
        domain === undefined
          ? `The default zone ${name} is not a zone of this Cloudflare account.`
          : `domain ${JSON.stringify(name.slice(0, 80))} is not a zone of this Cloudflare account.`,
      fix:
        known.length > 0
          ? `Pass \`domain\` as one of: ${known.join(', ')} (tunnel_list_domains), or leave it out for the default zone.`
          : 'The zone list is empty: wait for the zones to be refreshed, then retry.',
      details: { argument: 'domain', domain: name, known },
    });
  }
  return zone;
}

/**
 * The ledger holds the name: the identical request of the owner of an active route is answered as done (the route
 * is returned), anything else is a conflict.
 */
function heldByCaller(context: BackendContext, project: string, hostname: string, targetPort: number): Route | undefined {
  const held = context.options.routes.find(hostname);
  if (held && !(held.project === project && held.targetPort === targetPort && held.status === 'active')) {
    throw new TunnelManagerError({
      code: 'HOSTNAME_TAKEN',
      message:
        held.project === project
          ? `${hostname} is already yours (${held.status}, port ${held.targetPort ?? 'unknown'}).`
          : `${hostname} belongs to ${held.project}.`,
      fix:
        held.project === project
          ? `To move it to port ${targetPort} without taking it down, call tunnel_update_cname { "hostname": "${hostname}", "targetPort": ${targetPort} }.`
          : 'Choose another subdomain.',
      details: { hostname, owner: held.project, status: held.status },
    });
  }
  return held;
}

/** `limits.routesPerProject`, checked early: a new route is refused once the project holds that many (0: no limit). */
function assertUnderRouteQuota(context: BackendContext, project: string): void {
  const quota = context.options.config.limits.routesPerProject;
  const held = context.options.routes.requestedBy(project);
  if (quota === 0 || held < quota) return;
  throw routeQuotaExceeded(project, held, quota);
}

/**
 * The name is free for the caller in the ledger (a new name within the project's route quota) and in Cloudflare:
 * refuses early (and accurately for dryRun) when Cloudflare has a record of that name that is not ours. Answers the
 * caller's identical active route, if any, and the request's one DNS plan (src/cloudflare/record-plan.ts): made here,
 * once, and carried to the saga's DNS step, which trusts it and re-checks only the race (ownership-registry.ts).
 */
async function checkNameFree(context: BackendContext, project: string, zone: Domain, hostname: Hostname, targetPort: number) {
  if (!heldByCaller(context, project, hostname, targetPort)) assertUnderRouteQuota(context, project);
  const plan = await context.options.provider.planCname({ zoneId: zone.zoneId, hostname, owner: project });
  // Another request may have reserved the name while we looked (and may already have made its record): that is
  // a HOSTNAME_TAKEN, not a foreign record.
  const existing = heldByCaller(context, project, hostname, targetPort);
  if (plan.action === 'refuse') throw recordExistsError(plan, hostname, zone.zoneId);
  return { existing, plan };
}

function chosenOrThrow(selection: TargetSelection): TargetChosen {
  if (!selection.ok) throw targetUnreachableError(selection);
  return selection;
}

/**
 * The name and the target, looked at together (they are independent: a Cloudflare lookup and this machine's sockets;
 * against the real API the target's evidence then costs no time of its own). When both refuse, the name's refusal is
 * the one answered, as when they ran in turn. Then the route's warning: an identical active route is answered as
 * done, anything new is checked first.
 */
async function nameAndTarget(context: BackendContext, project: string, zone: Domain, hostname: Hostname, request: CnameRequest) {
  const [name, chosen] = await Promise.allSettled([
    checkNameFree(context, project, zone, hostname, request.targetPort),
    chooseTarget(context, request.targetPort, project),
  ]);
  if (name.status === 'rejected') throw name.reason;
  const { existing, plan } = name.value;
  // The caller's identical active route is done whatever the port looks like now: answered as it is.
  if (existing?.service && (chosen.status === 'rejected' || !chosen.value.selection.ok)) {
    return { existing, plan, target: { target: existing.service, reason: existing.targetReason ?? 'as published', alternatives: [] }, warning: null, ahead: false };
  }
  if (chosen.status === 'rejected') throw chosen.reason;
  const target = chosenOrThrow(chosen.value.selection);
  const check = existing ? null : await answeringOrAhead(context, request.targetPort, target, chosen.value.cloudflared, request.publishAhead === true);
  return { existing, plan, target, warning: check?.warning ?? null, ahead: check?.ahead === true };
}

/** The steps a provision takes, in plain words (a dry run answers them). */
function provisionPlan(context: BackendContext, project: string, hostname: string, target: string, plan: AcceptedPlan): string[] {
  const { provider, config } = context.options;
  return [
    `reserve ${hostname} for ${project} in the ledger`,
    plan.action !== 'create' ? `reuse our CNAME ${hostname} → ${provider.tunnelTarget}` : `create the proxied CNAME ${hostname} → ${provider.tunnelTarget} marked as owned by ${project}`,
    `add the ingress rule ${hostname} → ${target} to ${config.cloudflared.configPath}, commit it and reload cloudflared`,
    'wait until the tunnel is ready',
    'mark the route active and tell subscribers',
  ];
}

/** A saga that ended not ok always says why; should one not, the caller still gets the one error shape. */
const SAGA_FAILED_UNSAID: RouteErrorShape = {
  code: 'INTERNAL',
  message: 'The route saga failed without saying why.',
  fix: 'This is a bug in tunnel-manager: check tunnel_list_cnames for the route, the service log around this time, and report it.',
  details: {},
};

/** Runs the provision saga; a failure is answered with what failed, after the saga undid everything it did. */
async function provision(context: BackendContext, request: RouteRequest, hooks: CallHooks) {
  const output = await context.options.runner.run(request, {
    ...(hooks.progress ? { onStep: (step: string) => hooks.progress?.(`publishing ${request.hostname}: ${step}`) } : {}),
    ...(hooks.signal ? { signal: hooks.signal } : {}),
  });
  if (!output.ok) {
    const error = output.error ?? SAGA_FAILED_UNSAID;
    // The undo could not delete the record it made: the row stays, `deleting`, and says so (route-effects.ts).
    const kept = context.options.routes.find(request.hostname);
    const recordLeft = output.timings.some((timing) => timing.step === 'reserve') && kept?.status === 'deleting' && kept.requestId === null;
    throw new TunnelManagerError({
      code: error.code,
      message: recordLeft
        ? `${error.message} The rest was undone, but the DNS record this request created could not be deleted (${kept.lastError ?? 'unknown reason'}): ${request.hostname} stays listed as \`deleting\` until it is gone.`
        : `${error.message} Everything done for this request was undone.`,
      fix: recordLeft
        ? `${error.fix} The record is deleted by itself once Cloudflare answers again (tunnel_list_cnames shows when it retries); tunnel_delete_cname { "hostname": "${request.hostname}" } retries now.`
        : error.fix,
      details: {
        ...error.details,
        hostname: request.hostname,
        timings: output.timings,
        compensationErrors: output.compensationErrors,
        ...(recordLeft ? { recordLeft: true, ledgerStatus: 'deleting' } : {}),
      },
    });
  }
  return output;
}

async function requestCname(context: BackendContext, project: string, request: CnameRequest, hooks: CallHooks): Promise<CnameResult> {
  const zone = zoneFor(context, request.domain);
  const hostname = requestedHostname(request.subdomain, zone.name);
  const { existing, plan, target, warning, ahead } = await nameAndTarget(context, project, zone, hostname, request);
  const expiresAt = request.expiresInSeconds === undefined ? null : Date.now() + request.expiresInSeconds * 1000;
  const base = {
    url: `https://${hostname}`,
    hostname,
    zone: zone.name,
    target: target.target,
    reason: target.reason,
    alternatives: target.alternatives.map((a) => `${a.target} (${a.reason})`),
    plan: provisionPlan(context, project, hostname, target.target, plan),
    expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(),
    warning,
  };
  // A tunnel that will not serve soon (a long backoff, stopped) is said at once, before anything is created: the
  // saga would otherwise make the record and the rule, wait for the tunnel, and undo it all.
  if (!existing) {
    const down = notServingSoon(context.tunnelSnapshot(), Date.now(), { outcome: request.dryRun ? 'The request would be refused.' : 'Nothing was created.' });
    if (down !== null) throw down;
  }
  if (request.dryRun) return { ...base, dryRun: true, timings: [], dnsRecordId: null, commit: null };
  if (existing) {
    return { ...base, target: existing.service ?? target.target, dryRun: false, plan: ['already published: nothing to do'], timings: [], dnsRecordId: existing.dnsRecordId, commit: null };
  }
  const output = await provision(context, {
    requestId: randomUUID(),
    kind: 'provision',
    project,
    hostname,
    zoneId: zone.zoneId,
    zoneName: zone.name,
    targetPort: request.targetPort,
    service: target.target,
    targetReason: target.reason,
    originRequest: request.originRequest ?? null,
    expiresAt,
    ...(ahead ? { awaitingService: true } : {}),
    dnsPlan: plan,
  }, hooks);
  return { ...base, dryRun: false, timings: output.timings, dnsRecordId: output.dnsRecordId, commit: output.commit };
}

/**
 * Runs a removal saga and says exactly what happened: done (rule, record and row gone), refused (the rule could
 * not be removed, so nothing was deleted and the route is as it was), or half done (the rule is gone but the
 * record is not: the row stays `deleting`, is retried on a schedule, and the owner may retry).
 */
async function deprovision(context: BackendContext, route: Route, hooks: CallHooks = {}): Promise<DeleteResult> {
  const { hostname } = route;
  const output = await context.options.runner.run({
    requestId: randomUUID(),
    kind: 'deprovision',
    project: route.project,
    hostname,
    zoneId: route.zoneId,
    zoneName: route.zoneName,
    targetPort: route.targetPort,
    service: route.service,
    targetReason: route.targetReason,
    originRequest: route.originRequest,
    expiresAt: route.expiresAt,
  }, { ...(hooks.progress ? { onStep: (step: string) => hooks.progress?.(`deleting ${hostname}: ${step}`) } : {}) });
  if (!output.ok) {
    const error = output.error ?? SAGA_FAILED_UNSAID;
    const after = context.options.routes.find(hostname);
    const ruleRemoved = output.timings.some((timing) => timing.step === 'removeIngress') && after?.status === 'deleting';
    if (ruleRemoved) {
      const nextRetryAt = after.nextRetryAt === null ? null : new Date(after.nextRetryAt).toISOString();
      throw new TunnelManagerError({
        code: error.code,
        message: `${hostname} is half deleted: its ingress rule is removed (it no longer serves), but its DNS record could not be deleted: ${error.message} The route stays listed as \`deleting\` until the record is gone.`,
        fix:
          `Nothing to do but wait: the delete is retried by itself${nextRetryAt === null ? '' : ` at ${nextRetryAt}`} (${describeDeleteRetries()}; tunnel_list_cnames shows when). ` +
          `To retry now, call tunnel_delete_cname { "hostname": "${hostname}" } again${error.fix ? ` (${error.fix})` : ''}.`,
        details: { ...error.details, hostname, ruleRemoved: true, dnsRecordDeleted: false, ledgerStatus: 'deleting', attempts: after.deleteAttempts, nextRetryAt },
      });
    }
    throw new TunnelManagerError({
      code: error.code,
      message: `${hostname} was not deleted: ${error.message} Nothing was changed: the route, its rule and its DNS record are as they were.`,
      fix: error.fix,
      details: { ...error.details, hostname, ruleRemoved: false, dnsRecordDeleted: false, ledgerStatus: after?.status ?? null },
    });
  }
  return {
    hostname,
    deleted: true,
    // The record step ran and succeeded (a route whose record was never ours, e.g. already gone, has none to delete).
    dnsRecordDeleted: output.timings.some((timing) => timing.step === 'deleteDns'),
    timings: output.timings,
  };
}

/** The route a delete may start on: one in the ledger, not being published or deleted right now. */
function deletableRoute(context: BackendContext, asGiven: string): Route {
  // Errors about the argument quote it as given; everything else uses the ledger's normalised name.
  const name = parseHostname(asGiven);
  const hostname = name ?? asGiven;
  const route = name === null ? undefined : context.options.routes.find(name);
  // A name that is no DNS name at all gets a clearer answer than "not found" (any name in the ledger,
  // adopted ones included, stays deletable whatever its form).
  const problems = route ? [] : hostnameProblems(hostname);
  if (problems.length > 0) {
    throw new TunnelManagerError({
      code: 'HOSTNAME_INVALID',
      message: `hostname ${JSON.stringify(asGiven.slice(0, 80))} is not a valid DNS name: ${problems.join('; ')}.`,
      fix: 'Pass `hostname` as tunnel_list_cnames lists it, e.g. "app.153.se".',
      details: { argument: 'hostname', problems },
    });
  }
  if (!route) {
    throw routeNotFound(hostname);
  }
  // A delete that left the row `deleting` with no saga (its DNS record could not be deleted) may be retried.
  const stuckDelete = route.status === 'deleting' && route.requestId === null;
  if (route.status === 'pending' || (route.status === 'deleting' && !stuckDelete)) {
    throw new TunnelManagerError({
      code: 'ROUTE_BUSY',
      message: `${hostname} is being ${route.status === 'pending' ? 'published' : 'deleted'} right now.`,
      fix: 'Wait a few seconds and retry; tunnel_list_cnames shows its status.',
      details: { hostname, status: route.status },
    });
  }
  return route;
}

/** Runs the orphan scan now, or waits for the one running: the first outcome after asking answers this request too. */
function scanOrphans(context: BackendContext): Promise<OrphanScanResult> {
  const orphans = supervisorChild(context.options.supervisor(), 'orphans');
  return ask(
    orphans,
    { type: 'SCAN' },
    {
      emitted: (event): Outcome<OrphanScanResult> => {
        // The machine knows the scan's outline; the effect emits the whole answer, read back through its schema.
        if (event.type === 'orphans.scanned') {
          const read = orphanScanResultSchema.safeParse(event.result);
          return read.success ? { value: read.data } : { error: new TunnelManagerError({ code: 'INTERNAL', message: `The orphan scan answered in an unexpected shape: ${read.error.message}`, fix: 'This is a bug in tunnel-manager: report it with the service log around this time.', details: {} }) };
        }
        return {
          error: new TunnelManagerError({
            code: event.code,
            message: `The orphan scan could not list the DNS records: ${event.error}`,
            fix: `Nothing was changed. The scan retries by itself in ${Math.round(event.retryInMs / 1000)} s; call tunnel_scan_orphans again later.`,
            details: { retryInMs: event.retryInMs },
          }),
        };
      },
    },
    // The orphans machine answers every scan itself (scanned, or failed with its retry time).
    null,
  );
}

export function backendRoutes(
  context: BackendContext,
): Pick<ManagerBackend, 'requestCname' | 'deleteCname' | 'retryDelete' | 'findRoute' | 'listRoutes' | 'pageRoutes' | 'listDomains' | 'scanOrphans'> {
  const { config, routes, domains } = context.options;
  return {
    requestCname: async (project, request, hooks = {}) => requestCname(context, project, request, hooks),
    deleteCname: async (hostname, hooks = {}) => deprovision(context, deletableRoute(context, hostname), hooks),
    retryDelete: async (hostname: string) => {
      const route = routes.find(hostname);
      if (!route || route.status !== 'deleting' || route.requestId !== null) return null;
      return deprovision(context, route);
    },
    findRoute: (hostname) => routes.find(hostname),
    listRoutes: (filter) => routes.list(filter),
    pageRoutes: (filter) => routes.page(filter),
    listDomains: () =>
      domains.list().map((zone) => ({
        zoneId: zone.zoneId,
        name: zone.name,
        status: zone.status,
        plan: zone.plan,
        isDefault: zone.name === config.tunnel.defaultZone,
      })),
    scanOrphans: async () => scanOrphans(context),
  };
}
