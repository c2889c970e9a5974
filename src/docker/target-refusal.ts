import { hasNameResolution } from './topology-model.ts';
import type { Recommendation, TargetRefused } from './target-types.ts';
import {
  bindKind,
  HOST_GATEWAY_DEFAULT,
  list,
  onHostSide,
  pickNetwork,
  publishedPort,
  SHARED_NETWORK_SUGGESTION,
  type CloudflaredView,
  type ContainerServiceView,
  type ServiceView,
} from './target-views.ts';

/**
 * Refusals (docs/docker-targets.md): what is wrong when no target reaches the service, and the exact changes that
 * would fix it. A stopped service is refused in target-selection.ts, which reruns the selection as if it ran.
 */

type Url = (host: string, port: number) => string;

export function refusalDetails(cloudflared: CloudflaredView, service: ServiceView): TargetRefused['details'] {
  const serviceOnHost = service.kind === 'host' || service.onHostNetwork;
  return {
    cloudflared: cloudflared.label,
    cloudflaredNetworks: cloudflared.onHostNetwork ? ['host'] : cloudflared.networks,
    service: service.label,
    serviceNetworks: serviceOnHost ? ['host'] : service.networks,
    publishedPorts: service.kind === 'container' ? service.bindings.map((b) => publishedPort(b, service.port)) : [],
  };
}

export function refusal(reason: string, recommendations: Recommendation[], details: TargetRefused['details']): TargetRefused {
  return { ok: false, code: 'TARGET_UNREACHABLE', reason, recommendations, details };
}

/** A running container service nothing can reach (no network, or listening on its own loopback): `blocked` says why. */
export function refuseBlocked(cloudflared: CloudflaredView, service: ContainerServiceView, blocked: string): [string, Recommendation[]] {
  if (service.networkMode === 'none') {
    const network = cloudflared.onHostNetwork ? null : (cloudflared.networks.find(hasNameResolution) ?? null);
    return [
      `${blocked}.`,
      [
        {
          command: network === null ? `-p 127.0.0.1:${service.hostPortHint ?? service.port}:${service.port}` : `--network ${network}`,
          explanation: `Recreate ${service.label} with this option instead of --network none (a container without a network cannot be connected later).`,
        },
      ],
    ];
  }
  return [
    `${blocked}.`,
    [
      {
        command: null,
        explanation: `Make the service in ${service.label} listen on 0.0.0.0:${service.port} (all interfaces of its container) instead of ${service.listenAddress}, then restart it with \`docker restart ${service.name}\`. Publishing the port or sharing a network does not help while it listens on loopback.`,
      },
    ],
  ];
}

/** A service on the host's network stack that a cloudflared in its own network namespace cannot reach. */
export function refuseOnHostStack(cloudflared: CloudflaredView, service: ServiceView, url: Url): [string, Recommendation[]] {
  const port = service.port;
  const what = service.kind === 'host' ? `the service on host port ${port}` : `${service.label} (network_mode "host", port ${port})`;
  if (service.listen === 'loopback') {
    return [
      `${what} listens on ${service.listenAddress} only, which ${cloudflared.label} cannot reach from its own network namespace.`,
      [
        { command: `--network host`, explanation: `Recreate ${cloudflared.label} with this option, so it shares the host's network; then the target is ${url('localhost', port)}.`, resultingTarget: url('localhost', port) },
        { command: null, explanation: `Or make the service listen on the Docker gateway address (or 0.0.0.0 behind a firewall) and add --add-host ${HOST_GATEWAY_DEFAULT}:host-gateway to ${cloudflared.label}.` },
      ],
    ];
  }
  return [
    `${what} is on the host, and ${cloudflared.label} has no host-gateway mapping (no --add-host NAME:host-gateway), so it has no name for the host.`,
    [
      {
        command: `--add-host ${HOST_GATEWAY_DEFAULT}:host-gateway`,
        explanation: `Recreate ${cloudflared.label} with this option (compose: extra_hosts: ["${HOST_GATEWAY_DEFAULT}:host-gateway"]); then the target is ${url(HOST_GATEWAY_DEFAULT, port)} (the service must listen on 0.0.0.0 or the gateway address).`,
        resultingTarget: url(HOST_GATEWAY_DEFAULT, port),
      },
      { command: `--network host`, explanation: `Or recreate ${cloudflared.label} with this option; then the target is ${url('localhost', port)}.`, resultingTarget: url('localhost', port) },
    ],
  ];
}

/** A running container service in its own network namespace that a cloudflared on the host's network cannot reach. */
export function refuseFromHostStack(cloudflared: CloudflaredView, service: ContainerServiceView, url: Url): [string, Recommendation[]] {
  const hostPort = service.hostPortHint ?? service.port;
  const reason =
    service.bindings.length === 0
      ? `${onHostSide(cloudflared)} and ${service.label} publishes no host port for ${service.port}/tcp (networks: ${list(service.networks)}); the host cannot reach it by name.`
      : `${service.label} publishes port ${service.port} only in ways the host cannot use.`;
  return [
    reason,
    [
      {
        command: `-p 127.0.0.1:${hostPort}:${service.port}`,
        explanation: `Recreate ${service.label} with this option (docker run … -p 127.0.0.1:${hostPort}:${service.port} …; compose: ports: ["127.0.0.1:${hostPort}:${service.port}"]); then the target is ${url('localhost', hostPort)}.`,
        resultingTarget: url('localhost', hostPort),
      },
    ],
  ];
}

/** Two containers, each in its own network namespace, with no shared user-defined network and no usable published port. */
export function refuseBetweenContainers(cloudflared: CloudflaredView, service: ContainerServiceView, preferred: string | null, url: Url): [string, Recommendation[]] {
  return [betweenContainersReason(cloudflared, service), betweenContainersFixes(cloudflared, service, preferred, url)];
}

function betweenContainersReason(cloudflared: CloudflaredView, service: ContainerServiceView): string {
  const svcNetworks = service.networks;
  const cfNetworks = cloudflared.networks;
  const publishedPorts = service.bindings.map((b) => publishedPort(b, service.port)).join(', ');
  const onlyBridge = svcNetworks.includes('bridge') && cfNetworks.includes('bridge') && !cfNetworks.some((n) => svcNetworks.includes(n) && hasNameResolution(n));
  const published =
    service.bindings.length === 0
      ? `it publishes no host port for ${service.port}/tcp`
      : service.bindings.every((b) => bindKind(b.hostIp) === 'loopback')
        ? `its published port (${publishedPorts}) is bound to 127.0.0.1, which a container cannot reach`
        : `its published port (${publishedPorts}) needs a host-gateway mapping that ${cloudflared.label} does not have`;
  return onlyBridge
    ? `${cloudflared.label} and ${service.label} share only the default "bridge" network, which has no name resolution, and ${published}. cloudflared is on ${list(cfNetworks)}; the service is on ${list(svcNetworks)}.`
    : `${cloudflared.label} and ${service.label} share no user-defined network, and ${published}. cloudflared is on ${list(cfNetworks)}; the service is on ${list(svcNetworks)}.`;
}

function betweenContainersFixes(cloudflared: CloudflaredView, service: ContainerServiceView, preferred: string | null, url: Url): Recommendation[] {
  const cfName = cloudflared.name;
  if (cfName === null) throw new Error('target selection: a cloudflared outside the host network is a container, so it has a name');
  const nameTarget = url(service.name, service.port);
  const cfNetwork = pickNetwork(cloudflared.networks.filter(hasNameResolution), preferred);
  const svcNetwork = pickNetwork(service.networks.filter(hasNameResolution), preferred);
  const recommendations: Recommendation[] = [];
  if (cfNetwork !== undefined) {
    recommendations.push({
      command: `docker network connect ${cfNetwork} ${service.name}`,
      explanation: `Attach ${service.label} to cloudflared's network "${cfNetwork}" (no restart needed); then the target is ${nameTarget}.`,
      resultingTarget: nameTarget,
    });
  }
  if (svcNetwork !== undefined) {
    recommendations.push({
      command: `docker network connect ${svcNetwork} ${cfName}`,
      explanation: `Or attach ${cloudflared.label} to the service's network "${svcNetwork}" (no restart needed); then the target is ${nameTarget}.`,
      resultingTarget: nameTarget,
    });
  }
  if (cfNetwork === undefined && svcNetwork === undefined) {
    recommendations.push({
      command: `docker network create ${SHARED_NETWORK_SUGGESTION} && docker network connect ${SHARED_NETWORK_SUGGESTION} ${cfName} && docker network connect ${SHARED_NETWORK_SUGGESTION} ${service.name}`,
      explanation: `Create a user-defined network and attach both containers to it (the default "bridge" network has no name resolution); then the target is ${nameTarget}.`,
      resultingTarget: nameTarget,
    });
  }
  const allInterfaces = service.bindings.find((b) => bindKind(b.hostIp) === 'all-interfaces');
  if (allInterfaces !== undefined && cloudflared.gatewayName === null) {
    recommendations.push({
      command: `--add-host ${HOST_GATEWAY_DEFAULT}:host-gateway`,
      explanation: `Or recreate ${cloudflared.label} with this option (compose: extra_hosts); then the target is ${url(HOST_GATEWAY_DEFAULT, allInterfaces.hostPort)}.`,
      resultingTarget: url(HOST_GATEWAY_DEFAULT, allInterfaces.hostPort),
    });
  }
  return recommendations;
}
