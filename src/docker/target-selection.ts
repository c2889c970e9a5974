import { TunnelManagerError } from '../errors.ts';
import { candidatesFor, whyServiceCannotBeReached } from './target-candidates.ts';
import { refusal, refusalDetails, refuseBetweenContainers, refuseBlocked, refuseFromHostStack, refuseOnHostStack } from './target-refusal.ts';
import type { Recommendation, TargetRefused, TargetSelection, TargetSelectionInput } from './target-types.ts';
import {
  cloudflaredPlacementOf,
  normalizeCloudflared,
  normalizeService,
  servicePlacementOf,
  type CloudflaredView,
  type ContainerServiceView,
  type ServiceView,
} from './target-views.ts';

export type {
  CloudflaredPlacement,
  Recommendation,
  ServicePlacement,
  TargetCandidate,
  TargetChosen,
  TargetRefused,
  TargetSelection,
  TargetSelectionInput,
  TargetVia,
} from './target-types.ts';

/**
 * Target selection (docs/design.md, Target selection): given where cloudflared runs and where the service runs,
 * the ingress `service` URL that will actually reach it, why, and what else would work;
 * or a refusal that says which networks each side is on and the exact change that would fix it.
 *
 * Pure and deterministic: every list in the input is sorted before use, so the answer never
 * depends on the order Docker happened to list networks, containers or ports in.
 * The views are in target-views.ts, the candidates in target-candidates.ts, the refusals in target-refusal.ts.
 */
export function selectTarget(input: TargetSelectionInput): TargetSelection {
  const cloudflared = normalizeCloudflared(input.cloudflared);
  const service = normalizeService(input.service);
  const scheme = input.scheme ?? 'http';
  const blocked = whyServiceCannotBeReached(cloudflared, service);
  const candidates = blocked === null ? candidatesFor(cloudflared, service, input.preferredNetwork ?? null, scheme) : [];
  const [chosen, ...alternatives] = candidates;
  if (chosen !== undefined) {
    const renamed = service.kind === 'container' && service.requestedAs && service.requestedAs !== service.name
      ? ` (container "${service.requestedAs}" is now named "${service.name}")`
      : '';
    return { ok: true, ...chosen, reason: chosen.reason + renamed, alternatives };
  }
  return refuse(cloudflared, service, scheme, input.preferredNetwork ?? null, blocked);
}

/** The refusal as the one error shape callers see. */
export function targetUnreachableError(refusal: TargetRefused): TunnelManagerError {
  const fix = refusal.recommendations.length === 0
    ? 'No change on the Docker side can make this work; publish the service differently or run cloudflared elsewhere.'
    : refusal.recommendations
        .map((r, i) => `${i + 1}. ${r.command === null ? '' : `${r.command} — `}${r.explanation}`)
        .join(' ');
  return new TunnelManagerError({
    code: 'TARGET_UNREACHABLE',
    message: refusal.reason,
    fix,
    details: { ...refusal.details, recommendations: refusal.recommendations },
  });
}

function refuse(cloudflared: CloudflaredView, service: ServiceView, scheme: 'http' | 'https', preferred: string | null, blocked: string | null): TargetRefused {
  const details = refusalDetails(cloudflared, service);
  const url = (host: string, port: number) => `${scheme}://${host}:${port}`;
  if (service.kind === 'container' && blocked !== null) {
    if (service.state !== 'running') return refusal(`${blocked}.`, startRecommendations(cloudflared, service, scheme, preferred), details);
    return refusal(...refuseBlocked(cloudflared, service, blocked), details);
  }
  // Only reachable here when cloudflared is in a container on its own network namespace.
  if (service.kind === 'host' || service.onHostNetwork) return refusal(...refuseOnHostStack(cloudflared, service, url), details);
  // A container service with its own network namespace, running, not on loopback.
  if (cloudflared.onHostNetwork) return refusal(...refuseFromHostStack(cloudflared, service, url), details);
  return refusal(...refuseBetweenContainers(cloudflared, service, preferred, url), details);
}

/** A stopped or paused service: start it, and what the selection would then say (its target, or what else to fix). */
function startRecommendations(cloudflared: CloudflaredView, service: ContainerServiceView, scheme: 'http' | 'https', preferred: string | null): Recommendation[] {
  const command = service.state === 'paused' ? `docker unpause ${service.name}` : `docker start ${service.name}`;
  const once = selectTarget({
    cloudflared: cloudflaredPlacementOf(cloudflared),
    service: { ...servicePlacementOf(service), state: 'running' },
    preferredNetwork: preferred,
    scheme,
  });
  const recommendations: Recommendation[] = [{
    command,
    explanation: once.ok ? `Start ${service.label}; then the target is ${once.target}.` : `Start ${service.label}.`,
    ...(once.ok ? { resultingTarget: once.target } : {}),
  }];
  if (!once.ok) recommendations.push(...once.recommendations);
  return recommendations;
}
