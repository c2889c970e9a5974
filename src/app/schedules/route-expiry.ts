import type { Logger } from 'pino';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import type { ManagerBackend } from '../use-cases/backend.ts';
import { dueForRemoval, type OrphanPolicy } from '../effects/orphan-effects.ts';
import { startRounds } from './rounds.ts';

/**
 * Routes asked for with an expiry are removed once it has passed, and the routes of a project that left the
 * configuration once its grace period has: checked every minute, at boot, and after every orphan scan (a grace of 0
 * means "at the scan"). A removal is the backend's deleteCname, for the service itself (no caller, so nothing to authorize); one that fails is tried at the next check.
 */
export interface RouteExpiry {
  /** Removes whatever is due now. */
  removeDue(): void;
  stop(): void;
}

export function startRouteExpiry(options: {
  routes: RoutesRepository;
  policy: OrphanPolicy;
  backend: Pick<ManagerBackend, 'deleteCname'>;
  logger: Logger;
  intervalMs?: number;
}): RouteExpiry {
  const removeDue = (): void => {
    const now = Date.now();
    const all = options.routes.list();
    const due = new Map<string, { project: string; why: string }>();
    for (const route of dueForRemoval(all, options.policy, now)) due.set(route.hostname, { project: route.project, why: 'project removed' });
    for (const route of all) {
      if (route.expiresAt !== null && route.expiresAt <= now && route.status === 'active') due.set(route.hostname, { project: route.project, why: 'expired' });
    }
    for (const [hostname, { project, why }] of due) {
      options.backend
        .deleteCname(hostname)
        .then(() => options.logger.info({ hostname, project, why }, 'route removed'))
        .catch((error: unknown) => options.logger.warn({ err: error, hostname, why }, 'could not remove a route; will retry'));
    }
  };
  const rounds = startRounds(removeDue, { intervalMs: options.intervalMs ?? 60_000, logger: options.logger, what: 'removing the routes that are due' });
  return { removeDue, stop: rounds.stop };
}
