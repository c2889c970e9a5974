import type { Logger } from 'pino';
import { toErrorShape } from '../../errors.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import type { EventBus } from '../actors/event-bus.ts';

/**
 * When a delete that could not delete its DNS record is tried again, after its n-th failed attempt (the last value
 * repeats): short first retries, so a route is gone seconds after Cloudflare answers again, then backing off, so an
 * outage costs a few requests of the Cloudflare budget, not a stream of them.
 */
export const DELETE_RETRY_DELAYS_MS: readonly number[] = [5_000, 15_000, 30_000, 60_000, 120_000, 300_000];

/**
 * When the next attempt runs after the `attempts`-th failure (1 for the first): the schedule's delay, or longer when
 * Cloudflare (or our own budget) said to wait (CLOUDFLARE_RATE_LIMITED's `retryAfterSeconds`).
 */
export function nextDeleteRetryAt(attempts: number, now: number, error: { code: string; details?: Record<string, unknown> } | null, delaysMs: readonly number[] = DELETE_RETRY_DELAYS_MS): number {
  const delay = delaysMs[Math.min(Math.max(attempts, 1), delaysMs.length) - 1] ?? 300_000;
  const retryAfter = error?.code === 'CLOUDFLARE_RATE_LIMITED' ? Number(error.details?.retryAfterSeconds ?? 0) * 1000 : 0;
  return now + Math.max(delay, Number.isFinite(retryAfter) ? retryAfter : 0);
}

/** The schedule in words, for the fixes that name it. */
export function describeDeleteRetries(delaysMs: readonly number[] = DELETE_RETRY_DELAYS_MS): string {
  const words = (ms: number) => (ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);
  return `after ${delaysMs.slice(0, -1).map(words).join(', ')}, then every ${words(delaysMs.at(-1) ?? 300_000)}`;
}

/**
 * A delete whose DNS step failed keeps its row (status `deleting`, no saga, `lastError`, `nextRetryAt`): the rule is
 * gone, the record is not. Each such row gets a new delete when its `nextRetryAt` comes (the saga's failure sets the
 * next one, backing off: `nextDeleteRetryAt`), until its record is really gone; the owner can also retry at once with
 * tunnel_delete_cname. One timer, armed for the earliest row due, and re-armed whenever a delete fails.
 */
export function startDeleteRetries(options: { routes: RoutesRepository; bus: EventBus; retry: (hostname: string) => Promise<unknown>; logger: Logger; now?: () => number }): () => void {
  const now = options.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let stopped = false;

  const arm = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (stopped || running) return;
    const next = options.routes.stuckDeletes()[0];
    if (next === undefined) return;
    // At most a day ahead: a timer's delay is capped, and the next failure re-arms it anyway.
    timer = setTimeout(() => void sweep(), Math.min(86_400_000, Math.max(0, (next.nextRetryAt ?? 0) - now())));
    timer.unref();
  };

  const sweep = async (): Promise<void> => {
    if (running || stopped) return;
    running = true;
    try {
      for (const route of options.routes.stuckDeletes()) {
        if (stopped) break;
        if ((route.nextRetryAt ?? 0) > now()) break; // in due order: the rest are not due yet
        let failure: unknown = null;
        try {
          await options.retry(route.hostname);
        } catch (error) {
          failure = error;
          options.logger.warn({ hostname: route.hostname, attempt: route.deleteAttempts + 1, err: error }, 'retried delete failed; trying again later');
        }
        const after = options.routes.find(route.hostname);
        if (after === undefined) {
          options.logger.info({ hostname: route.hostname, attempt: route.deleteAttempts + 1 }, 'retried delete: the DNS record is gone and the route is removed');
        } else if (after.status === 'deleting' && after.requestId === null && (after.nextRetryAt ?? 0) <= now()) {
          // A failure that did not reach the DNS step (the rule could not be removed, the record could not be looked
          // up) still backs off, never a retry loop.
          const attempts = after.deleteAttempts + 1;
          options.routes.update(after.hostname, { deleteAttempts: attempts, nextRetryAt: nextDeleteRetryAt(attempts, now(), failure === null ? null : toErrorShape(failure)) }, now());
        }
      }
    } finally {
      running = false;
      arm();
    }
  };

  const unsubscribe = options.bus.subscribe((event) => {
    if (event.kind === 'route.delete_failed') arm();
  });
  arm();
  return () => {
    stopped = true;
    unsubscribe();
    clearTimeout(timer);
  };
}
