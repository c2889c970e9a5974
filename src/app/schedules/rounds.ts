import type { Logger } from 'pino';

/**
 * The one primitive for periodic work in src/app and src/root: every schedule (backups, retention, the publish-ahead
 * watch, label routes, route expiry, the heap trimmer) is a job done in rounds.
 */
export interface Rounds {
  /** One round now (or, while one runs, one more right after it); resolves when that round is done. */
  runNow(): Promise<void>;
  stop(): void;
}

export interface RoundsOptions {
  /** A round every this many ms (an unref'd timer: it never keeps the process alive). */
  intervalMs: number;
  /** Also one round this long after the start (before the first interval has passed). */
  firstAfterMs?: number;
  /** A round the timer starts while one runs is skipped, not queued (e.g. a backup slower than its interval). */
  skipWhenBusy?: boolean;
  logger: Logger;
  /** What a round does, for the log line of a failed one ("… failed; trying again at the next round"). */
  what: string;
}

/**
 * A job done in rounds: every `intervalMs` and on demand, never two rounds at once. A round that throws is logged and
 * the next one runs as planned, so a schedule never dies of one failure.
 */
export function startRounds(round: () => Promise<void> | void, options: RoundsOptions): Rounds {
  let running: Promise<void> | null = null;
  let again = false;
  const runNow = (): Promise<void> => {
    if (running !== null) {
      again = true;
      return running;
    }
    running = (async () => {
      // Yield first: a round with nothing to do would otherwise end before `running` is even assigned.
      await Promise.resolve();
      try {
        do {
          again = false;
          try {
            await round();
          } catch (error) {
            options.logger.error({ err: error }, `${options.what} failed; trying again at the next round`);
          }
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  const tick = (): void => {
    if (options.skipWhenBusy === true && running !== null) return;
    void runNow();
  };
  const timer = setInterval(tick, options.intervalMs);
  timer.unref();
  const first = options.firstAfterMs === undefined ? undefined : setTimeout(tick, options.firstAfterMs);
  first?.unref();
  return {
    runNow,
    stop: () => {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
