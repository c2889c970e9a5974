import type { AnyActorRef } from 'xstate';
import type { TopologyEmitted } from '../../../machines/topology.machine.ts';
import { changeSetOf } from '../effects/topology-effects.ts';
import { detectTargetDrift } from '../../docker/topology-drift.ts';
import type { RoutesRepository } from '../../store/routes-repository.ts';
import { cloudflaredLocationOptions } from '../config/cloudflared-placement.ts';
import type { Config } from '../config/config.ts';
import type { EventBus } from '../actors/event-bus.ts';

/**
 * After a topology change: every active route whose target stopped working is told to its owner
 * (`route.target_drift`), and one with a working new target (a renamed container, say) is re-targeted through the
 * ingress actor, the only writer of config.yml (`route.retargeted`).
 */
export function retargetAfterChange(
  event: Extract<TopologyEmitted, { type: 'topology.changed' }>,
  deps: { config: Config; routes: RoutesRepository; bus: EventBus; ingress: () => AnyActorRef },
): void {
  const change = changeSetOf(event.update);
  if (!change) return;
  const findings = detectTargetDrift({
    routes: deps.routes
      .list()
      .flatMap((r) => (r.status === 'active' && r.service !== null ? [{ hostname: r.hostname, project: r.project, service: r.service, targetPort: r.targetPort }] : [])),
    before: change.before,
    after: change.after,
    cloudflared: cloudflaredLocationOptions(deps.config),
  });
  for (const finding of findings) {
    deps.bus.publish(finding.event.kind, finding.event.project, finding.event.data);
    const proposal = finding.proposal;
    if (proposal?.ok && proposal.target !== finding.previousTarget) {
      deps.routes.update(finding.hostname, { service: proposal.target, targetReason: `re-targeted after ${finding.cause}: ${proposal.reason}` }, Date.now());
      deps.ingress().send({ type: 'CHANGE', change: { hostname: finding.hostname, action: 'update', project: finding.project, target: proposal.target } });
      deps.bus.publish('route.retargeted', finding.project, { hostname: finding.hostname, from: finding.previousTarget, to: proposal.target, cause: finding.cause });
    }
  }
}
