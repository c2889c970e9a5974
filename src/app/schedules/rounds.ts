import type { Logger } from 'pino';

export interface Rounds {
  /** One round now (or, while one runs, one more right after it); resolves when that round is done. */
  runNow(): Promise<void>;
  stop(): void;
}

/**
 * A job done in rounds: every `intervalMs` and on demand, never two rounds at once. A round that throws is logged and
 * the next one runs as planned, so a schedule never dies of one failure.
 */
export function startRounds(round: () => Promise<void>, options: { intervalMs: number; logger: Logger; what: string }): Rounds {
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
  const timer = setInterval(() => void runNow(), options.intervalMs);
  timer.unref();
  return { runNow, stop: () => clearInterval(timer) };
}
