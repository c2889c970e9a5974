import type { Logger } from 'pino';
import type { ConnectivityReport } from '../../docker/connectivity-check.ts';
import type { Route, RoutesRepository } from '../../store/routes-repository.ts';
import type { EventBus } from '../actors/event-bus.ts';
import { startRounds } from './rounds.ts';

/**
 * Routes published ahead of their service (`tunnel_request_cname` with `publishAhead`) are checked every
 * `intervalMs` from where cloudflared runs. The first answer clears the route's warning and tells its owner
 * (`route.service_answering`); a service still silent after `noticeAfterMs` is told once
 * (`route.service_not_answering`), and checking goes on until it answers or the route is deleted.
 * The ledger keeps both moments, so a restart neither forgets a route nor tells its owner twice.
 */
export interface AnswerWatchOptions {
  routes: RoutesRepository;
  bus: EventBus;
  /** The connectivity check of `tunnel_check_connectivity`, for a route's target. */
  check: (target: string) => Promise<ConnectivityReport>;
  intervalMs: number;
  noticeAfterMs: number;
  logger: Logger;
  now?: () => number;
}

export interface AnswerWatch {
  /** One round now (the timer calls it; tests too). Rounds never overlap. */
  runOnce(): Promise<void>;
  stop(): void;
}

export function startAnswerWatch(options: AnswerWatchOptions): AnswerWatch {
  const now = options.now ?? Date.now;

  async function checkRoute(route: Route): Promise<void> {
    if (route.service === null || route.awaitingServiceSince === null) return;
    let report: ConnectivityReport;
    try {
      report = await options.check(route.service);
    } catch (error) {
      options.logger.warn({ err: error, hostname: route.hostname }, 'could not check whether a published-ahead service answers; trying again next round');
      return;
    }
    const at = now();
    // The route may have been deleted or re-targeted while it was checked.
    const current = options.routes.find(route.hostname);
    if (current === undefined || current.awaitingServiceSince === null || current.service !== route.service) return;
    if (report.ok) {
      options.routes.update(route.hostname, { awaitingServiceSince: null, awaitingServiceNoticedAt: null }, at);
      options.bus.publish('route.service_answering', route.project, {
        hostname: route.hostname,
        target: route.service,
        httpStatus: report.httpStatus,
        waitedMs: at - route.awaitingServiceSince,
      }, at);
      return;
    }
    if (current.awaitingServiceNoticedAt === null && at - current.awaitingServiceSince >= options.noticeAfterMs) {
      options.routes.update(route.hostname, { awaitingServiceNoticedAt: at }, at);
      options.bus.publish('route.service_not_answering', route.project, {
        hostname: route.hostname,
        target: route.service,
        since: new Date(current.awaitingServiceSince).toISOString(),
        error: report.error,
        fix: `Start the service on port ${route.targetPort ?? '(its port)'} listening on 0.0.0.0, or delete the route (tunnel_delete_cname { "hostname": "${route.hostname}" }) if it is not coming.`,
      }, at);
    }
  }

  const rounds = startRounds(
    async () => {
      for (const route of options.routes.awaitingService()) await checkRoute(route);
    },
    { intervalMs: options.intervalMs, logger: options.logger, what: 'checking routes published ahead of their service' },
  );
  return { runOnce: rounds.runNow, stop: rounds.stop };
}
