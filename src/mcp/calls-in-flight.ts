import type { ErrorShape } from '../errors.ts';

/**
 * The tool calls running now, and what a stop does with them: it gives them a grace to finish, then answers each one
 * still running with SHUTTING_DOWN, so no client is left waiting for an answer that a stopped process will never
 * send (its request would otherwise time out, -32001, a minute later). The work a call started is not abandoned: a
 * route saga is persisted and resumed, or undone, at the next start.
 */
export class CallsInFlight {
  /** Each running call's way to be answered at once. */
  private readonly running = new Set<(shape: ErrorShape) => void>();
  /** Waiting for `running` to empty. */
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.running.size;
  }

  /** Runs `work`: its value, or the shape `interruptAll` answers it with when that comes first. */
  async run<T>(work: () => Promise<T>): Promise<{ value: T } | { interrupted: ErrorShape }> {
    let answerNow: (shape: ErrorShape) => void = () => undefined;
    const interrupted = new Promise<{ interrupted: ErrorShape }>((resolve) => {
      answerNow = (shape) => resolve({ interrupted: shape });
    });
    this.running.add(answerNow);
    const running = work();
    // Once answered by the stop, a later failure of the work is nobody's to hear (the service log has it).
    running.catch(() => undefined);
    try {
      return await Promise.race([running.then((value) => ({ value })), interrupted]);
    } finally {
      this.running.delete(answerNow);
      if (this.running.size === 0) this.wake();
    }
  }

  /** Waits until no call runs, or `graceMs` passed; answers how many still run. */
  async settle(graceMs: number): Promise<number> {
    if (this.running.size > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    return this.running.size;
  }

  /** Answers every running call with `shape` now; answers how many there were. */
  interruptAll(shape: ErrorShape): number {
    const answered = this.running.size;
    for (const answer of [...this.running]) answer(shape);
    return answered;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** The answer of a call the stop could not wait for. */
export function shuttingDown(graceMs: number, during: 'call' | 'request'): ErrorShape {
  return {
    code: 'SHUTTING_DOWN',
    message:
      during === 'call'
        ? `Tunnel Manager is stopping (a restart or a shutdown) and this call did not finish within the ${graceMs / 1000} s it was given. What it started is not lost: a route request or removal is resumed, or undone, when the service starts again.`
        : 'Tunnel Manager is stopping (a restart or a shutdown); this request was not run.',
    fix:
      'Retry after the restart (tunnel_get_status answers again once the service is back). After an interrupted tunnel_request_cname or tunnel_delete_cname, ' +
      'look at tunnel_list_cnames first: the change may have been completed when the service started again.',
    details: { graceSeconds: graceMs / 1000 },
  };
}
