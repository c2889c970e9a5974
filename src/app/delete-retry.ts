import type { Logger } from 'pino';
import type { RoutesRepository } from '../store/routes-repository.ts';

/** How often a delete that could not delete its DNS record is tried again. */
export const DELETE_RETRY_INTERVAL_MS = 5 * 60_000;

/**
 * A delete whose DNS step failed keeps its row (status `deleting`, no saga, `lastError` set): the rule is gone, the
 * record is not. Every few minutes each such row gets a new delete, until its record is really gone; the owner can
 * also retry at once with tunnel_delete_cname.
 */
export function startDeleteRetries(options: {
  routes: RoutesRepository;
  retry: (hostname: string) => Promise<unknown>;
  logger: Logger;
  intervalMs?: number;
}): () => void {
  let running = false;
  const sweep = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      for (const route of options.routes.withStatus('deleting')) {
        if (route.requestId !== null) continue; // a saga holds it
        try {
          await options.retry(route.hostname);
          options.logger.info({ hostname: route.hostname }, 'retried delete: the DNS record is gone and the route is removed');
        } catch (error) {
          options.logger.warn({ hostname: route.hostname, err: error }, 'retried delete failed; trying again later');
        }
      }
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), options.intervalMs ?? DELETE_RETRY_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
