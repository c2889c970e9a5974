import type { Actor, AnyActorRef } from 'xstate';
import type { Logger } from 'pino';
import type { RouteOutput, RouteRequest } from '../../../machines/route.machine.ts';
import { ROUTE_ACTOR_PREFIX, type SupervisorMachine } from '../../../machines/supervisor.machine.ts';
import type { AuditRepository } from '../../store/audit-repository.ts';
import type { EventBus } from './event-bus.ts';

/** Calls `onStep` with each state a saga enters, until it stops. */
function reportSteps(child: AnyActorRef, onStep: (step: string) => void): void {
  let last = '';
  const report = (snapshot: { value?: unknown; status?: string }) => {
    const step = typeof snapshot.value === 'string' ? snapshot.value : JSON.stringify(snapshot.value);
    if (step !== last) {
      last = step;
      onStep(step);
    }
    if (snapshot.status !== 'active') subscription.unsubscribe();
  };
  const subscription = child.subscribe({ next: (snapshot) => report(snapshot as never), error: () => subscription.unsubscribe() });
  report(child.getSnapshot() as never);
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
    const child = actor.getSnapshot().children[`${ROUTE_ACTOR_PREFIX}${request.requestId}`];
    if (!child) throw new Error(`the route saga ${request.requestId} did not start`);
    if (options.onStep) reportSteps(child as AnyActorRef, options.onStep);
    const outcome = this.follow(request.requestId, child as AnyActorRef);
    const { signal } = options;
    if (signal) {
      const cancel = () => (child as AnyActorRef).send({ type: 'CANCEL' });
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
    const children = this.supervisor().getSnapshot().children as Record<string, AnyActorRef | undefined>;
    let resumed = 0;
    for (const [id, child] of Object.entries(children)) {
      if (!id.startsWith(ROUTE_ACTOR_PREFIX) || !child) continue;
      const requestId = id.slice(ROUTE_ACTOR_PREFIX.length);
      if (this.waiting.has(requestId)) continue;
      resumed += 1;
      this.logger?.info({ requestId, state: (child.getSnapshot() as { value?: unknown }).value }, 'resuming a route saga restored from the snapshot');
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

  private follow(requestId: string, child: AnyActorRef): Promise<RouteOutput> {
    const existing = this.waiting.get(requestId);
    if (existing) return existing;
    const promise = new Promise<RouteOutput>((resolve, reject) => {
      const settle = (snapshot: { status: string; output?: unknown; error?: unknown }) => {
        if (snapshot.status === 'done') {
          subscription?.unsubscribe();
          const output = snapshot.output as RouteOutput;
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
          resolve(output);
        } else if (snapshot.status === 'error') {
          subscription?.unsubscribe();
          this.waiting.delete(requestId);
          this.supervisor().send({ type: 'ROUTE.FINISHED', requestId });
          reject(snapshot.error instanceof Error ? snapshot.error : new Error(String(snapshot.error)));
        }
      };
      let subscription: { unsubscribe(): void } | undefined = undefined;
      subscription = child.subscribe({ next: (snapshot) => settle(snapshot as never), error: (error) => settle({ status: 'error', error }) });
      settle(child.getSnapshot() as never);
    });
    this.waiting.set(requestId, promise);
    return promise;
  }
}
