import { assign, fromPromise, not, setup } from 'xstate';
import { notProvided, now } from './shared.ts';
import { isErrorCode, type ErrorCode } from './error-codes.ts';

/**
 * One CNAME request (provision) or removal (deprovision), as a saga with a state per step and per compensation.
 * A failed provision compensates in reverse order. A delete is finished or refused, never reported done while
 * half done. What each state does is in its `description`; the diagram is in docs/machines.md.
 *
 * The supervisor persists this actor with its snapshot. After a restore the promise of the current step runs
 * again, so every step is idempotent (reserve finds its own row, the DNS step reuses its own record, the ingress
 * step renders from the ledger). Timings of each step go into the output.
 */

export interface RouteErrorShape {
  code: ErrorCode;
  message: string;
  fix: string;
  details: Record<string, unknown>;
}

export interface RouteRequest {
  requestId: string;
  kind: 'provision' | 'deprovision';
  project: string;
  hostname: string;
  zoneId: string;
  zoneName: string;
  targetPort: number | null;
  /** The ingress service chosen for the target, e.g. http://localhost:3100. */
  service: string | null;
  targetReason: string | null;
  originRequest: Record<string, unknown> | null;
  expiresAt: number | null;
  /** Published ahead of its service (nothing answered when it was checked): the ledger row says since when it waits. */
  awaitingService?: boolean;
  /**
   * provision: the DNS plan the request made (src/cloudflare/record-plan.ts), carried to the DNS step so a name is
   * planned once per request. Opaque to the machine (it imports nothing of src/); the step checks it.
   */
  dnsPlan?: unknown;
}

export interface StepTiming {
  step: string;
  ms: number;
}

export interface RouteContext {
  request: RouteRequest;
  dnsRecordId: string | null;
  /** True only when this saga created the DNS record, so only then may a rollback delete it. */
  dnsCreated: boolean;
  /** The ingress commit, when the config file changed. */
  commit: string | null;
  timings: StepTiming[];
  stepStartedAt: number;
  error: RouteErrorShape | null;
  /** Compensation steps that failed (they are reported, and the saga still ends). */
  compensationErrors: RouteErrorShape[];
  /** deprovision: the row as it was before the delete began, to put back if the rule cannot be removed. */
  previous: { status: string; service: string | null } | null;
  /** provision: the caller cancelled; the saga undoes what it did at the end of the step it is in. */
  cancelled?: boolean;
}

export interface RouteOutput {
  ok: boolean;
  request: RouteRequest;
  dnsRecordId: string | null;
  dnsCreated: boolean;
  commit: string | null;
  timings: StepTiming[];
  error: RouteErrorShape | null;
  compensationErrors: RouteErrorShape[];
}

export interface StepInput {
  request: RouteRequest;
  dnsRecordId: string | null;
  dnsCreated: boolean;
  previous: { status: string; service: string | null } | null;
  error: RouteErrorShape | null;
  /** Compensation steps that failed so far (the release of a failed provision says why its record is left). */
  compensationErrors: RouteErrorShape[];
}

/** What markDeleting found: the route's record, and the row as it was. */
export interface MarkDeletingOutput {
  recordId: string | null;
  created: boolean;
  previous: { status: string; service: string | null };
}

/**
 * RECHECK: a restored saga looks again. CANCEL: the caller gave up on a provision; it takes effect when the running
 * step ends (never in the middle of one, so a step and its undoing never run at once), and not once the route is
 * being activated.
 */
export type RouteEvent = { type: 'RECHECK' } | { type: 'CANCEL' };

/** The error a cancelled provision ends with. */
export const CANCELLED_ERROR: RouteErrorShape = {
  code: 'CANCELLED',
  message: 'The request was cancelled by its caller before the route was published; everything done for it was undone.',
  fix: 'Request it again when you want it published.',
  details: {},
};

function toShape(error: unknown): RouteErrorShape {
  if (error && typeof error === 'object' && 'code' in error && 'fix' in error) {
    const e = error as { code: unknown; message?: string; fix: string; details?: Record<string, unknown> };
    return { code: isErrorCode(e.code) ? e.code : 'INTERNAL', message: e.message ?? String(error), fix: e.fix, details: e.details ?? {} };
  }
  return {
    code: 'INTERNAL',
    message: error instanceof Error ? error.message : String(error),
    fix: 'This is a bug in tunnel-manager: check the service log and report it.',
    details: {},
  };
}

const stepInput = ({ context }: { context: RouteContext }): StepInput => ({
  request: context.request,
  dnsRecordId: context.dnsRecordId,
  dnsCreated: context.dnsCreated,
  previous: context.previous,
  error: context.error,
  compensationErrors: context.compensationErrors,
});

/** A saga step the route machine declares; src/app/effects/route-effects.ts provides the real one. */
function step<TOutput>(name: string) {
  return fromPromise<TOutput, StepInput>(async () => notProvided('route', name));
}

export const routeMachine = setup({
  types: {
    context: {} as RouteContext,
    input: {} as RouteRequest,
    output: {} as RouteOutput,
    events: {} as RouteEvent,
  },
  actors: {
    reserveRoute: step<void>('reserveRoute'),
    ensureDnsRecord: step<{ recordId: string; created: boolean }>('ensureDnsRecord'),
    applyIngress: step<{ commit: string | null }>('applyIngress'),
    awaitTunnelReady: step<void>('awaitTunnelReady'),
    activateRoute: step<void>('activateRoute'),
    markDeleting: step<MarkDeletingOutput>('markDeleting'),
    restoreRoute: step<void>('restoreRoute'),
    keepForRetry: step<void>('keepForRetry'),
    removeIngressRule: step<{ commit: string | null }>('removeIngressRule'),
    deleteDnsRecord: step<void>('deleteDnsRecord'),
    releaseReservation: step<void>('releaseReservation'),
    forgetRoute: step<void>('forgetRoute'),
  },
  guards: {
    isProvision: ({ context }) => context.request.kind === 'provision',
    dnsCreatedHere: ({ context }) => context.dnsCreated && context.dnsRecordId !== null,
    cancelRequested: ({ context }) => context.cancelled === true,
  },
  actions: {
    markCancelled: assign({ cancelled: true }),
    recordCancelled: assign({ error: CANCELLED_ERROR }),
    /** Closes the timing of the step that just ended and opens the next one. */
    timeStep: assign(({ context }, params: { step: string }) => ({
      timings: [...context.timings, { step: params.step, ms: now() - context.stepStartedAt }],
      stepStartedAt: now(),
    })),
    recordDns: assign((_, params: { record: { recordId: string; created: boolean } }) => ({
      dnsRecordId: params.record.recordId,
      dnsCreated: params.record.created,
    })),
    recordExistingDns: assign((_, params: { found: MarkDeletingOutput }) => ({
      dnsRecordId: params.found.recordId,
      dnsCreated: params.found.created,
      previous: params.found.previous,
    })),
    recordCommit: assign(({ context }, params: { commit: string | null }) => ({ commit: params.commit ?? context.commit })),
    recordError: assign((_, params: { error: unknown }) => ({ error: toShape(params.error) })),
    recordCompensationError: assign(({ context }, params: { error: unknown }) => ({
      compensationErrors: [...context.compensationErrors, toShape(params.error)],
    })),
  },
}).createMachine({
  id: 'route',
  context: ({ input }) => ({
    request: input,
    dnsRecordId: null,
    dnsCreated: false,
    commit: null,
    timings: [],
    stepStartedAt: now(),
    error: null,
    compensationErrors: [],
    previous: null,
  }),
  initial: 'routing',
  states: {
    routing: {
      description: 'Takes the provision or the deprovision path.',
      always: [{ guard: 'isProvision', target: 'reserving' }, { target: 'markingDeleting' }],
    },

    // ── provision ──────────────────────────────────────────────────────────────
    reserving: {
      description: 'Provision: reserves the hostname in the ledger. If this fails, the saga ends with nothing to undo. A CANCEL takes effect when the step ends.',
      on: { CANCEL: { actions: 'markCancelled' } },
      invoke: {
        id: 'reserve',
        src: 'reserveRoute',
        input: stepInput,
        onDone: [
          { guard: 'cancelRequested', target: 'releasingReservation', actions: [{ type: 'timeStep', params: { step: 'reserve' } }, 'recordCancelled'] },
          { target: 'creatingDns', actions: { type: 'timeStep', params: { step: 'reserve' } } },
        ],
        // Nothing was reserved: nothing to undo.
        onError: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    creatingDns: {
      description: 'Provision: creates the CNAME record to the tunnel, or reuses one the same owner already has. Only a record this saga created is deleted by a rollback. A CANCEL takes effect when the step ends.',
      on: { CANCEL: { actions: 'markCancelled' } },
      invoke: {
        id: 'dns',
        src: 'ensureDnsRecord',
        input: stepInput,
        onDone: [
          {
            guard: 'cancelRequested',
            target: 'deletingDns',
            actions: [{ type: 'recordDns', params: ({ event }) => ({ record: event.output }) }, { type: 'timeStep', params: { step: 'dns' } }, 'recordCancelled'],
          },
          {
            target: 'configuringIngress',
            actions: [
              { type: 'recordDns', params: ({ event }) => ({ record: event.output }) },
              { type: 'timeStep', params: { step: 'dns' } },
            ],
          },
        ],
        onError: {
          target: 'releasingReservation',
          actions: [
            { type: 'recordError', params: ({ event }) => ({ error: event.error }) },
            { type: 'timeStep', params: { step: 'dns' } },
          ],
        },
      },
    },
    configuringIngress: {
      description: 'Provision: adds the ingress rule (the ingress machine renders it from the ledger). A CANCEL takes effect when the step ends.',
      on: { CANCEL: { actions: 'markCancelled' } },
      invoke: {
        id: 'ingress',
        src: 'applyIngress',
        input: stepInput,
        onDone: [
          {
            guard: 'cancelRequested',
            target: 'removingIngress',
            actions: [{ type: 'recordCommit', params: ({ event }) => ({ commit: event.output.commit }) }, { type: 'timeStep', params: { step: 'ingress' } }, 'recordCancelled'],
          },
          {
            target: 'awaitingTunnel',
            actions: [
              { type: 'recordCommit', params: ({ event }) => ({ commit: event.output.commit }) },
              { type: 'timeStep', params: { step: 'ingress' } },
            ],
          },
        ],
        onError: {
          target: 'removingIngress',
          actions: [
            { type: 'recordError', params: ({ event }) => ({ error: event.error }) },
            { type: 'timeStep', params: { step: 'ingress' } },
          ],
        },
      },
    },
    awaitingTunnel: {
      description: 'Provision: waits until cloudflared is ready to serve. A CANCEL takes effect when the step ends.',
      on: { CANCEL: { actions: 'markCancelled' } },
      invoke: {
        id: 'ready',
        src: 'awaitTunnelReady',
        input: stepInput,
        onDone: [
          { guard: 'cancelRequested', target: 'removingIngress', actions: [{ type: 'timeStep', params: { step: 'tunnelReady' } }, 'recordCancelled'] },
          { target: 'activating', actions: { type: 'timeStep', params: { step: 'tunnelReady' } } },
        ],
        onError: {
          target: 'removingIngress',
          actions: [
            { type: 'recordError', params: ({ event }) => ({ error: event.error }) },
            { type: 'timeStep', params: { step: 'tunnelReady' } },
          ],
        },
      },
    },
    activating: {
      description: 'Provision: marks the route active and tells its owner.',
      invoke: {
        id: 'activate',
        src: 'activateRoute',
        input: stepInput,
        onDone: { target: 'done', actions: { type: 'timeStep', params: { step: 'activate' } } },
        onError: {
          target: 'removingIngress',
          actions: [
            { type: 'recordError', params: ({ event }) => ({ error: event.error }) },
            { type: 'timeStep', params: { step: 'activate' } },
          ],
        },
      },
    },

    // ── deprovision ────────────────────────────────────────────────────────────
    markingDeleting: {
      description: 'Deprovision: marks the row deleting, finds its DNS record, and keeps the row as it was.',
      invoke: {
        id: 'markDeleting',
        src: 'markDeleting',
        input: stepInput,
        onDone: {
          target: 'removingRule',
          actions: [
            { type: 'recordExistingDns', params: ({ event }) => ({ found: event.output }) },
            { type: 'timeStep', params: { step: 'mark' } },
          ],
        },
        onError: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    removingRule: {
      description: 'Deprovision: removes the ingress rule. If it cannot be removed (a hand-broken config.yml, a refused reload), nothing is deleted.',
      invoke: {
        id: 'removeRule',
        src: 'removeIngressRule',
        input: stepInput,
        onDone: {
          target: 'deletingRecord',
          actions: [
            { type: 'recordCommit', params: ({ event }) => ({ commit: event.output.commit }) },
            { type: 'timeStep', params: { step: 'removeIngress' } },
          ],
        },
        // Nothing is deleted while the rule may still serve: the row goes back as it was and the caller is told why.
        onError: {
          target: 'restoringRoute',
          actions: [
            { type: 'recordError', params: ({ event }) => ({ error: event.error }) },
            { type: 'timeStep', params: { step: 'removeIngress' } },
          ],
        },
      },
    },
    restoringRoute: {
      description: 'Deprovision: the rule still serves, so the row goes back as it was. The saga ends failed.',
      invoke: {
        id: 'restore',
        src: 'restoreRoute',
        input: stepInput,
        onDone: { target: 'failed', actions: { type: 'timeStep', params: { step: 'restore' } } },
        onError: { target: 'failed', actions: { type: 'recordCompensationError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    deletingRecord: {
      description: 'Deprovision: deletes the DNS record, only if this route created it.',
      always: { guard: not('dnsCreatedHere'), target: 'forgetting' },
      invoke: {
        id: 'deleteRecord',
        src: 'deleteDnsRecord',
        input: stepInput,
        onDone: { target: 'forgetting', actions: { type: 'timeStep', params: { step: 'deleteDns' } } },
        // The rule is gone but the record is not: the row stays (status deleting) until the record really is.
        onError: {
          target: 'keepingForRetry',
          actions: [
            { type: 'recordError', params: ({ event }) => ({ error: event.error }) },
            { type: 'timeStep', params: { step: 'deleteDns' } },
          ],
        },
      },
    },
    keepingForRetry: {
      description: 'Deprovision: the rule is gone but the record is not. The row stays deleting, with the error, and the delete is retried on a schedule and by the owner. The saga ends failed.',
      invoke: {
        id: 'keep',
        src: 'keepForRetry',
        input: stepInput,
        onDone: { target: 'failed' },
        onError: { target: 'failed', actions: { type: 'recordCompensationError', params: ({ event }) => ({ error: event.error }) } },
      },
    },

    // ── compensation of a failed provision ──────────────────────────────────────
    removingIngress: {
      description: 'Compensation: removes the ingress rule of the failed provision.',
      invoke: {
        id: 'removeIngress',
        src: 'removeIngressRule',
        input: stepInput,
        onDone: {
          target: 'deletingDns',
          actions: [
            { type: 'recordCommit', params: ({ event }) => ({ commit: event.output.commit }) },
            { type: 'timeStep', params: { step: 'removeIngress' } },
          ],
        },
        onError: { target: 'deletingDns', actions: { type: 'recordCompensationError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    deletingDns: {
      description: 'Compensation: deletes the DNS record, only if this saga created it.',
      always: { guard: not('dnsCreatedHere'), target: 'releasingReservation' },
      invoke: {
        id: 'deleteDns',
        src: 'deleteDnsRecord',
        input: stepInput,
        onDone: { target: 'releasingReservation', actions: { type: 'timeStep', params: { step: 'deleteDns' } } },
        onError: { target: 'releasingReservation', actions: { type: 'recordCompensationError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    releasingReservation: {
      description: 'Compensation: releases the reservation, or, when a record this saga created may still exist (its deletion failed), keeps the row as deleting for the retry schedule and the owner. The saga ends failed.',
      invoke: {
        id: 'release',
        src: 'releaseReservation',
        input: stepInput,
        onDone: { target: 'failed', actions: { type: 'timeStep', params: { step: 'release' } } },
        onError: { target: 'failed', actions: { type: 'recordCompensationError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    forgetting: {
      description: 'Deprovision: removes the route from the ledger.',
      invoke: {
        id: 'forget',
        src: 'forgetRoute',
        input: stepInput,
        onDone: { target: 'done', actions: { type: 'timeStep', params: { step: 'forget' } } },
        onError: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },

    done: { type: 'final', description: 'The request was carried out.' },
    failed: { type: 'final', description: 'The request was not carried out. What could be undone was; failed compensations are in the output.' },
  },
  output: ({ context }) => ({
    ok: context.error === null,
    request: context.request,
    dnsRecordId: context.dnsRecordId,
    dnsCreated: context.dnsCreated,
    commit: context.commit,
    timings: context.timings,
    error: context.error,
    compensationErrors: context.compensationErrors,
  }),
});

export type RouteMachine = typeof routeMachine;
