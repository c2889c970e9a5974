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
] as const;

export type RoutePattern = (typeof ROUTE_PATTERNS)[number];

export function validateFaultSpec(value: unknown): FaultSpec {
  if (value === null || typeof value !== 'object') throw new Error('a fault is an object such as {"route":"POST /zones/:zone/dns_records","drop":"after","times":1}');
  const spec = value as Record<string, unknown>;
  if (typeof spec.route !== 'string') throw new Error('fault.route must be a string such as "GET /zones" or "*"');
  const [method, path] = spec.route === '*' ? ['*', '*'] : spec.route.split(' ');
  if (spec.route !== '*' && !ROUTE_PATTERNS.some((pattern) => routeMatches(`${method} ${path}`, pattern))) {
    throw new Error(`fault.route ${JSON.stringify(spec.route)} names no route; use one of: ${ROUTE_PATTERNS.join(', ')} (method may be *)`);
  }
  if (spec.latencyMs !== undefined && !(typeof spec.latencyMs === 'number' && spec.latencyMs >= 0)) throw new Error('fault.latencyMs must be a number >= 0');
  if (spec.status !== undefined && ![429, 500, 502, 503, 504].includes(spec.status as number)) throw new Error('fault.status must be one of 429, 500, 502, 503, 504');
  if (spec.retryAfterSeconds !== undefined && !(typeof spec.retryAfterSeconds === 'number' && spec.retryAfterSeconds >= 0)) throw new Error('fault.retryAfterSeconds must be a number >= 0');
  if (spec.drop !== undefined && spec.drop !== 'before' && spec.drop !== 'after') throw new Error('fault.drop must be "before" or "after"');
  if (spec.times !== undefined && !(Number.isInteger(spec.times) && (spec.times as number) >= 1)) throw new Error('fault.times must be a whole number >= 1');
  return spec as unknown as FaultSpec;
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

  set(specs: FaultSpec[]): void {
    this.faults = specs.map((spec) => ({ ...validateFaultSpec(spec), hits: 0 }));
  }

  add(specs: FaultSpec[]): void {
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
