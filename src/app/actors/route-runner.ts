import type { Actor } from 'xstate';
import type { Logger } from 'pino';
import type { RouteOutput, RouteRequest } from '../../../machines/route.machine.ts';
import type { SupervisorMachine } from '../../../machines/supervisor.machine.ts';
import type { AuditRepository } from '../../store/audit-repository.ts';
import { ask, type Outcome } from '../../actor-ask.ts';
import type { EventBus } from './event-bus.ts';
import { routeSaga, routeSagaIds, type RouteSaga } from './supervisor-children.ts';

type SagaSnapshot = ReturnType<RouteSaga['getSnapshot']>;

/**
 * Calls `onStep` with each state a saga enters, until it stops. A subscription, not an `ask`: progress is a stream
 * of answers to one request, not one answer.
 */
function reportSteps(child: RouteSaga, onStep: (step: string) => void): void {
  let last = '';
  const report = (snapshot: SagaSnapshot): boolean => {
    const step = typeof snapshot.value === 'string' ? snapshot.value : JSON.stringify(snapshot.value);
    if (step !== last) {
      last = step;
      onStep(step);
    }
    return snapshot.status === 'active';
  };
  // A saga that has already ended reports its last step and is not subscribed to (XState answers a subscription to
  // a stopped actor at once, before the subscription could be stored).
  if (!report(child.getSnapshot())) return;
  const subscription = child.subscribe({
    next: (snapshot) => {
      if (!report(snapshot)) subscription.unsubscribe();
    },
    error: () => subscription.unsubscribe(),
  });
}

/** A saga's end: its output once done, its failure once it errored. */
function sagaEnd(snapshot: SagaSnapshot): Outcome<RouteOutput> {
  if (snapshot.status === 'done') return { value: snapshot.output };
  if (snapshot.status === 'error') return { error: snapshot.error };
  return undefined;
}

/**
 * Starts route sagas as children of the supervisor and delivers their outcome. A saga that was running when
 * the service stopped is restored with the supervisor and resumed here on boot; its outcome is published and
 * audited even though nobody waits for it any more.
 */
export class RouteRunner {
  private readonly waiting = new Map<string, Promise<RouteOutput>>();

  constructor(
    private readonly supervisor: () => Actor<SupervisorMachine>,
    private readonly bus: EventBus,
    private readonly audit: AuditRepository,
    private readonly logger?: Logger,
    /** Writes the supervisor's snapshot now (its persistence is otherwise debounced). */
    private readonly flush: () => void = () => undefined,
    /** Hears every saga's outcome (metrics). */
    private readonly onFinished: (output: RouteOutput) => void = () => undefined,
  ) {}

  /**
   * Starts a saga. `onStep` hears each state it enters (MCP progress notifications); an abort of `signal` sends the
   * saga CANCEL (a provision then undoes itself at the end of its current step).
   */
  run(request: RouteRequest, options: { onStep?: (step: string) => void; signal?: AbortSignal } = {}): Promise<RouteOutput> {
    const actor = this.supervisor();
    actor.send({ type: 'ROUTE.START', request });
    // Persist the new saga at once, before its first step writes anything (the reserve step yields first): a crash
    // right after must find the saga that owns the reservation, or the ledger row would stay `pending` forever.
    this.flush();
    const child = routeSaga(actor, request.requestId);
    if (!child) throw new Error(`the route saga ${request.requestId} did not start`);
    if (options.onStep) reportSteps(child, options.onStep);
    const outcome = this.follow(request.requestId, child);
    const { signal } = options;
    if (signal) {
      const cancel = () => child.send({ type: 'CANCEL' });
      if (signal.aborted) cancel();
      else {
        signal.addEventListener('abort', cancel, { once: true });
        const stopListening = () => signal.removeEventListener('abort', cancel);
        outcome.then(stopListening, stopListening);
      }
    }
    return outcome;
  }

  /** Sagas restored from the snapshot: follow each to its end. */
  resumeAll(): number {
    const supervisor = this.supervisor();
    let resumed = 0;
    for (const requestId of routeSagaIds(supervisor)) {
      const child = routeSaga(supervisor, requestId);
      if (child === undefined || this.waiting.has(requestId)) continue;
      resumed += 1;
      this.logger?.info({ requestId, state: child.getSnapshot().value }, 'resuming a route saga restored from the snapshot');
      void this.follow(requestId, child).then((output) => {
        this.audit.record({
          ts: Date.now(),
          principal: 'system',
          action: output.request.kind === 'provision' ? 'route.resumed_provision' : 'route.resumed_deprovision',
          target: output.request.hostname,
          outcome: output.ok ? 'ok' : 'error',
          errorCode: output.error?.code ?? null,
          details: { requestId, timings: output.timings },
        });
      });
    }
    return resumed;
  }

  /** Waits for the saga's end (its snapshot, not a request: a restored saga is followed without asking anything). */
  private follow(requestId: string, child: RouteSaga): Promise<RouteOutput> {
    const existing = this.waiting.get(requestId);
    if (existing) return existing;
    const promise = ask(child, null, { snapshot: sagaEnd }, null).then(
      (output) => this.finished(requestId, output),
      (error: unknown) => {
        this.waiting.delete(requestId);
        this.supervisor().send({ type: 'ROUTE.FINISHED', requestId });
        throw error instanceof Error ? error : new Error(String(error));
      },
    );
    this.waiting.set(requestId, promise);
    return promise;
  }

  /** A saga is done: say a failure, drop the saga, and persist that before the caller hears the outcome. */
  private finished(requestId: string, output: RouteOutput): RouteOutput {
    if (!output.ok) {
      this.bus.publish('route.failed', output.request.project, {
        hostname: output.request.hostname,
        kind: output.request.kind,
        error: output.error,
        compensationErrors: output.compensationErrors,
      });
    }
    this.waiting.delete(requestId);
    this.onFinished(output);
    this.supervisor().send({ type: 'ROUTE.FINISHED', requestId });
    // The caller is told the outcome only once the snapshot no longer holds the saga: a restart right after
    // the answer does not run its last steps again.
    this.flush();
    return output;
  }
}
