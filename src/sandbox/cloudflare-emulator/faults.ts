/**
 * Fault knobs: per route (`METHOD /path/pattern`, or `*` for every route), settable at start and at
 * run time. A fault can add latency, answer 429 with Retry-After, answer 5xx, or drop the connection
 * before or after the request took effect. `times` limits how many matching requests it hits.
 */

export interface FaultSpec {
  /** e.g. `POST /zones/:zone/dns_records`, `GET /zones`, `*`, or `* /zones/:zone/dns_records` for any method. */
  route: string;
  latencyMs?: number;
  /** Answer this status instead of handling the request (429 gets a Retry-After header). */
  status?: 429 | 500 | 502 | 503 | 504;
  retryAfterSeconds?: number;
  /** Destroy the socket without answering: `before` the request takes effect, or `after` it did. */
  drop?: 'before' | 'after';
  /** How many matching requests this fault hits; absent means every one until reset. */
  times?: number;
}

export interface ActiveFault extends FaultSpec {
  /** How many requests it has hit so far. */
  hits: number;
}

/** The emulator's route patterns, as fault specs and the request log name them. */
export const ROUTE_PATTERNS = [
  'GET /zones',
  'GET /zones/:zone',
  'GET /zones/:zone/dns_records',
  'POST /zones/:zone/dns_records',
  'GET /zones/:zone/dns_records/:record',
  'PATCH /zones/:zone/dns_records/:record',
  'PUT /zones/:zone/dns_records/:record',
  'DELETE /zones/:zone/dns_records/:record',
  'GET /accounts/:account/cfd_tunnel/:tunnel/configurations',
  'PUT /accounts/:account/cfd_tunnel/:tunnel/configurations',
  'GET /user/tokens/verify',
  'POST /graphql',
] as const;

export type RoutePattern = (typeof ROUTE_PATTERNS)[number];

const FAULT_STATUSES = [429, 500, 502, 503, 504] as const;
type FaultStatus = (typeof FAULT_STATUSES)[number];

const isNonNegativeNumber = (value: unknown): value is number => typeof value === 'number' && value >= 0;
const isFaultStatus = (value: unknown): value is FaultStatus => FAULT_STATUSES.some((status) => status === value);
const isDrop = (value: unknown): value is 'before' | 'after' => value === 'before' || value === 'after';
const isTimes = (value: unknown): value is number => Number.isInteger(value) && typeof value === 'number' && value >= 1;

/** An optional field: absent, or one that passes `guard`, else `message`. */
function optionalField<T>(value: unknown, guard: (value: unknown) => value is T, message: string): { value?: T } {
  if (value === undefined) return {};
  if (!guard(value)) throw new Error(message);
  return { value };
}

function checkFaultRoute(route: unknown): string {
  if (typeof route !== 'string') throw new Error('fault.route must be a string such as "GET /zones" or "*"');
  const [method, path] = route === '*' ? ['*', '*'] : route.split(' ');
  if (route !== '*' && !ROUTE_PATTERNS.some((pattern) => routeMatches(`${method} ${path}`, pattern))) {
    throw new Error(`fault.route ${JSON.stringify(route)} names no route; use one of: ${ROUTE_PATTERNS.join(', ')} (method may be *)`);
  }
  return route;
}

export function validateFaultSpec(value: unknown): FaultSpec {
  if (value === null || typeof value !== 'object') throw new Error('a fault is an object such as {"route":"POST /zones/:zone/dns_records","drop":"after","times":1}');
  const spec: Partial<Record<string, unknown>> = { ...value };
  const route = checkFaultRoute(spec.route);
  const latencyMs = optionalField(spec.latencyMs, isNonNegativeNumber, 'fault.latencyMs must be a number >= 0');
  const status = optionalField(spec.status, isFaultStatus, 'fault.status must be one of 429, 500, 502, 503, 504');
  const retryAfterSeconds = optionalField(spec.retryAfterSeconds, isNonNegativeNumber, 'fault.retryAfterSeconds must be a number >= 0');
  const drop = optionalField(spec.drop, isDrop, 'fault.drop must be "before" or "after"');
  const times = optionalField(spec.times, isTimes, 'fault.times must be a whole number >= 1');
  return {
    route,
    ...(latencyMs.value === undefined ? {} : { latencyMs: latencyMs.value }),
    ...(status.value === undefined ? {} : { status: status.value }),
    ...(retryAfterSeconds.value === undefined ? {} : { retryAfterSeconds: retryAfterSeconds.value }),
    ...(drop.value === undefined ? {} : { drop: drop.value }),
    ...(times.value === undefined ? {} : { times: times.value }),
  };
}

/** Does a fault's route (`METHOD pattern`, `*` wildcards) cover this request's route pattern? */
function routeMatches(faultRoute: string, requestRoute: string): boolean {
  if (faultRoute === '*') return true;
  const [faultMethod, faultPath] = faultRoute.split(' ');
  const [method, path] = requestRoute.split(' ');
  return (faultMethod === '*' || faultMethod === method) && (faultPath === '*' || faultPath === path);
}

export class FaultBoard {
  private faults: ActiveFault[] = [];

  constructor(initial: FaultSpec[] = []) {
    this.set(initial);
  }

  /** Replaces the faults; each is checked (an outside value, e.g. the admin endpoint's body, is welcome). */
  set(specs: readonly unknown[]): void {
    this.faults = specs.map((spec) => ({ ...validateFaultSpec(spec), hits: 0 }));
  }

  add(specs: readonly unknown[]): void {
    this.faults.push(...specs.map((spec) => ({ ...validateFaultSpec(spec), hits: 0 })));
  }

  clear(): void {
    this.faults = [];
  }

  list(): ActiveFault[] {
    return this.faults.map((fault) => ({ ...fault }));
  }

  /** The first fault that applies to this request, counting the hit; spent faults are skipped. */
  take(route: RoutePattern): ActiveFault | undefined {
    const fault = this.faults.find((f) => routeMatches(f.route, route) && (f.times === undefined || f.hits < f.times));
    if (fault === undefined) return undefined;
    fault.hits += 1;
    return { ...fault };
  }
}
