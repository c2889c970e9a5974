import { hasNameResolution } from './topology-model.ts';
import type { TargetCandidate } from './target-types.ts';
import {
  bindKind,
  onHostSide,
  pickNetwork,
  publishedPort,
  uniqueBy,
  type CloudflaredView,
  type ContainerServiceView,
  type PublishedBinding,
  type ServiceView,
} from './target-views.ts';

/**
 * The targets that reach the service from where cloudflared runs, best first (docs/docker-targets.md): the same
 * network namespace, the host's own network stack, a shared user-defined network, then the published ports.
 */

type Url = (host: string, port: number) => string;

/** Why nothing can reach the service whatever the target (stopped, no network, listening on its own loopback), or null. */
export function whyServiceCannotBeReached(cloudflared: CloudflaredView, service: ServiceView): string | null {
  if (service.kind === 'host') return null;
  if (service.state !== 'running') return `${service.label} is ${service.state}, so nothing answers on port ${service.port}`;
  if (service.networkMode === 'none') return `${service.label} runs with network_mode "none" and has no network at all`;
  const sameNetns = cloudflared.netnsOwner !== null && cloudflared.netnsOwner === service.netnsOwner;
  if (service.listen === 'loopback' && !service.onHostNetwork && !sameNetns) {
    return `${service.label} listens on ${service.listenAddress} inside its container, so only processes in that container can reach port ${service.port}`;
  }
  return null;
}

export function candidatesFor(cloudflared: CloudflaredView, service: ServiceView, preferred: string | null, scheme: string): TargetCandidate[] {
  const url: Url = (host, port) => `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (service.kind === 'container' && cloudflared.netnsOwner !== null && cloudflared.netnsOwner === service.netnsOwner) {
    return [
      {
        target: url('localhost', service.port),
        via: 'same-network-namespace',
        reason: `${cloudflared.label} and ${service.label} share one network namespace (${service.netnsOwner}), so the service is on localhost:${service.port}`,
      },
    ];
  }
  // The service listens on the host's own network stack (host process, or a container with network_mode host).
  if (service.kind === 'host' || service.onHostNetwork) return onHostStack(cloudflared, service, url);
  // The service is a container with its own network namespace.
  const candidates = [
    ...sharedNetworkCandidates(cloudflared, service, preferred, url),
    ...service.bindings.flatMap((binding) => publishedPortCandidates(cloudflared, service, binding, url)),
  ];
  return uniqueBy(candidates, (c) => c.target);
}

function onHostStack(cloudflared: CloudflaredView, service: ServiceView, url: Url): TargetCandidate[] {
  const port = service.port;
  const what = service.kind === 'host' ? 'the service runs on the host' : `${service.label} uses network_mode "host"`;
  const bound = service.listen === 'specific' ? service.listenAddress : null;
  if (cloudflared.onHostNetwork) {
    const where = onHostSide(cloudflared);
    if (bound !== null) return [{ target: url(bound, port), via: 'bound-address', reason: `${where} and ${what}, listening on ${bound} only` }];
    return [{ target: url('localhost', port), via: 'host-loopback', reason: `${where} and ${what}, so it is on localhost:${port}` }];
  }
  if (bound !== null) {
    return [{ target: url(bound, port), via: 'bound-address', reason: `${what}, listening on ${bound}, an address of the host that ${cloudflared.label} can route to` }];
  }
  if (service.listen === 'loopback' || cloudflared.gatewayName === null) return [];
  return [
    {
      target: url(cloudflared.gatewayName, port),
      via: 'host-gateway',
      reason:
        `${what} and ${cloudflared.label} maps ${cloudflared.gatewayName} to the host gateway` +
        (service.listen === 'unknown' ? ' (the service must listen on 0.0.0.0 or the gateway address, not only 127.0.0.1)' : ''),
    },
  ];
}

function sharedNetworkCandidates(cloudflared: CloudflaredView, service: ContainerServiceView, preferred: string | null, url: Url): TargetCandidate[] {
  if (cloudflared.onHostNetwork) return [];
  const shared = cloudflared.networks.filter((n) => service.networks.includes(n) && hasNameResolution(n));
  const network = pickNetwork(shared, preferred);
  if (network === undefined) return [];
  const others = shared.filter((n) => n !== network);
  const how = preferred !== null && network === preferred ? 'the preferred network' : shared.length > 1 ? 'the first shared network by name' : 'a shared user-defined network';
  return [
    {
      target: url(service.name, service.port),
      via: 'shared-network',
      network,
      reason:
        `${cloudflared.label} and ${service.label} are both on "${network}" (${how}; Docker resolves container names there)` +
        (others.length > 0 ? `; also shared: ${others.map((n) => `"${n}"`).join(', ')}` : ''),
    },
  ];
}

function publishedPortCandidates(cloudflared: CloudflaredView, service: ContainerServiceView, binding: PublishedBinding, url: Url): TargetCandidate[] {
  const { hostPort } = binding;
  const specific = bindKind(binding.hostIp) === 'specific' ? binding.hostIp : null;
  const published = publishedPort(binding, service.port);
  if (cloudflared.onHostNetwork) {
    const where = onHostSide(cloudflared);
    if (specific !== null) return [{ target: url(specific, hostPort), via: 'bound-address', reason: `${where} and ${service.label} publishes ${published}, bound to that address only` }];
    return [{ target: url('localhost', hostPort), via: 'host-loopback', reason: `${where} and ${service.label} publishes ${published}` }];
  }
  if (specific !== null) {
    return [{ target: url(specific, hostPort), via: 'bound-address', reason: `${service.label} publishes ${published}, an address of the host that ${cloudflared.label} can route to` }];
  }
  if (bindKind(binding.hostIp) === 'all-interfaces' && cloudflared.gatewayName !== null) {
    return [
      {
        target: url(cloudflared.gatewayName, hostPort),
        via: 'host-gateway',
        reason: `${service.label} publishes ${published} on all interfaces and ${cloudflared.label} maps ${cloudflared.gatewayName} to the host gateway`,
      },
    ];
  }
  return [];
}
