import { TunnelManagerError } from '../errors.ts';
import { hasNameResolution, sortedBy, type PortBinding } from './topology-model.ts';

/**
 * Target selection (docs/design.md, Target selection): given where cloudflared runs and where the service runs,
 * the ingress `service` URL that will actually reach it, why, and what else would work;
 * or a refusal that says which networks each side is on and the exact change that would fix it.
 *
 * Pure and deterministic: every list in the input is sorted before use, so the answer never
 * depends on the order Docker happened to list networks, containers or ports in.
 */

/** Where cloudflared runs, as seen from the network. */
export type CloudflaredPlacement =
  | { kind: 'host' }
  | {
      kind: 'container';
      name: string;
      /** `host` makes it behave exactly like a host process. */
      networkMode: string | null;
      /** Names of the networks it is attached to (after following `container:<x>`). */
      networks: string[];
      /** Host names mapped to the host gateway in its /etc/hosts (`--add-host NAME:host-gateway`). */
      hostGatewayNames: string[];
      /** Name of the container whose network namespace it uses, when `network_mode: container:<x>`. */
      netnsOwner?: string | null;
    };

/** Where the service runs. `port` is the port the service listens on in its own network namespace. */
export type ServicePlacement =
  | {
      kind: 'host';
      port: number;
      /** The address the process listens on, when known (`0.0.0.0`, `127.0.0.1`, a specific IP). */
      listenAddress?: string | null;
    }
  | {
      kind: 'container';
      name: string;
      state: string;
      networkMode: string | null;
      networks: string[];
      ports: PortBinding[];
      port: number;
      listenAddress?: string | null;
      /** The name the caller used, when it differs from the current one (renamed container). */
      requestedAs?: string | null;
      /** Name of the container whose network namespace it uses, when `network_mode: container:<x>`. */
      netnsOwner?: string | null;
      /** Host port the caller asked for (the project's allocated port); used when recommending `-p`. */
      hostPortHint?: number | null;
    };

export interface TargetSelectionInput {
  cloudflared: CloudflaredPlacement;
  service: ServicePlacement;
  /** Explicit choice among several shared networks. */
  preferredNetwork?: string | null;
  scheme?: 'http' | 'https';
}

export type TargetVia = 'same-network-namespace' | 'host-loopback' | 'bound-address' | 'shared-network' | 'host-gateway';

export interface TargetCandidate {
  target: string;
  via: TargetVia;
  reason: string;
  /** The shared network the name resolves on, for `shared-network`. */
  network?: string;
}

export interface Recommendation {
  /** The exact command (or option to add) that fixes it; null when the fix is inside the service itself. */
  command: string | null;
  explanation: string;
  /** The target that would be chosen after this change. */
  resultingTarget?: string;
}

export interface TargetChosen extends TargetCandidate {
  ok: true;
  alternatives: TargetCandidate[];
}

export interface TargetRefused {
  ok: false;
  code: 'TARGET_UNREACHABLE';
  reason: string;
  recommendations: Recommendation[];
  details: {
    cloudflared: string;
    cloudflaredNetworks: string[];
    service: string;
    serviceNetworks: string[];
    publishedPorts: string[];
  };
}

export type TargetSelection = TargetChosen | TargetRefused;

const HOST_GATEWAY_DEFAULT = 'host.docker.internal';
const SHARED_NETWORK_SUGGESTION = 'tunnel-manager';

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

// ---------------------------------------------------------------------------------------------
// Normalized views: sorted, deduplicated, with `network_mode: host` folded in.

interface CloudflaredView {
  onHostNetwork: boolean;
  label: string;
  name: string | null;
  networkMode: string | null;
  networks: string[];
  gatewayName: string | null;
  netnsOwner: string | null;
}

type ServiceView =
  | { kind: 'host'; label: string; port: number; listen: ListenKind; listenAddress: string | null }
  | {
      kind: 'container';
      label: string;
      name: string;
      state: string;
      networkMode: string | null;
      onHostNetwork: boolean;
      networks: string[];
      bindings: PortBinding[];
      port: number;
      listen: ListenKind;
      listenAddress: string | null;
      requestedAs: string | null;
      netnsOwner: string;
      hostPortHint: number | null;
    };

type ListenKind = 'any' | 'loopback' | 'specific' | 'unknown';

function normalizeCloudflared(placement: CloudflaredPlacement): CloudflaredView {
  if (placement.kind === 'host') {
    return { onHostNetwork: true, label: 'cloudflared (host process)', name: null, networkMode: null, networks: [], gatewayName: null, netnsOwner: null };
  }
  const gatewayNames = unique(placement.hostGatewayNames);
  return {
    onHostNetwork: placement.networkMode === 'host',
    label: `cloudflared container "${placement.name}"`,
    name: placement.name,
    networkMode: placement.networkMode,
    networks: unique(placement.networks),
    gatewayName: gatewayNames.includes(HOST_GATEWAY_DEFAULT) ? HOST_GATEWAY_DEFAULT : (gatewayNames[0] ?? null),
    netnsOwner: placement.netnsOwner ?? placement.name,
  };
}

function normalizeService(placement: ServicePlacement): ServiceView {
  const listenAddress = placement.listenAddress ?? null;
  if (placement.kind === 'host') {
    return { kind: 'host', label: `host service on port ${placement.port}`, port: placement.port, listen: listenKind(listenAddress), listenAddress };
  }
  const bindings = sortedBy(
    placement.ports.filter((b) => b.containerPort === placement.port && b.protocol === 'tcp' && b.hostPort !== null),
    (b) => `${String(b.hostPort).padStart(5, '0')} ${b.hostIp ?? ''}`,
  );
  return {
    kind: 'container',
    label: `container "${placement.name}"`,
    name: placement.name,
    state: placement.state,
    networkMode: placement.networkMode,
    onHostNetwork: placement.networkMode === 'host',
    networks: unique(placement.networks),
    bindings: dedupeBindings(bindings),
    port: placement.port,
    listen: listenKind(listenAddress),
    listenAddress,
    requestedAs: placement.requestedAs ?? null,
    netnsOwner: placement.netnsOwner ?? placement.name,
    hostPortHint: placement.hostPortHint ?? null,
  };
}

function listenKind(address: string | null): ListenKind {
  if (address === null || address === '') return 'unknown';
  if (address === '0.0.0.0' || address === '::' || address === '*') return 'any';
  if (address === '::1' || address.startsWith('127.')) return 'loopback';
  return 'specific';
}

type BindKind = 'all-interfaces' | 'loopback' | 'specific';

function bindKind(hostIp: string | null): BindKind {
  if (hostIp === null || hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::') return 'all-interfaces';
  if (hostIp === '127.0.0.1') return 'loopback';
  return 'specific';
}

/** Docker lists `0.0.0.0` and `::` for one `-p`; they are the same binding for our purposes. */
function dedupeBindings(bindings: PortBinding[]): PortBinding[] {
  const seen = new Set<string>();
  const out: PortBinding[] = [];
  for (const binding of bindings) {
    const kind = bindKind(binding.hostIp);
    const key = `${binding.hostPort} ${kind === 'specific' ? binding.hostIp : kind}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(binding);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Candidates, best first.

function whyServiceCannotBeReached(cloudflared: CloudflaredView, service: ServiceView): string | null {
  if (service.kind === 'host') return null;
  if (service.state !== 'running') return `${service.label} is ${service.state}, so nothing answers on port ${service.port}`;
  if (service.networkMode === 'none') return `${service.label} runs with network_mode "none" and has no network at all`;
  const sameNetns = cloudflared.netnsOwner !== null && cloudflared.netnsOwner === service.netnsOwner;
  if (service.listen === 'loopback' && !service.onHostNetwork && !sameNetns) {
    return `${service.label} listens on ${service.listenAddress} inside its container, so only processes in that container can reach port ${service.port}`;
  }
  return null;
}

function candidatesFor(cloudflared: CloudflaredView, service: ServiceView, preferred: string | null, scheme: string): TargetCandidate[] {
  const url = (host: string, port: number) => `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;

  if (service.kind === 'container' && cloudflared.netnsOwner !== null && cloudflared.netnsOwner === service.netnsOwner) {
    return [{
      target: url('localhost', service.port),
      via: 'same-network-namespace',
      reason: `${cloudflared.label} and ${service.label} share one network namespace (${service.netnsOwner}), so the service is on localhost:${service.port}`,
    }];
  }

  // The service listens on the host's own network stack (host process, or a container with network_mode host).
  if (service.kind === 'host' || service.onHostNetwork) {
    const port = service.port;
    const what = service.kind === 'host' ? 'the service runs on the host' : `${service.label} uses network_mode "host"`;
    if (cloudflared.onHostNetwork) {
      const where = cloudflared.name === null ? 'cloudflared runs on the host' : `${cloudflared.label} uses network_mode "host"`;
      if (service.listen === 'specific' && service.listenAddress !== null) {
        return [{ target: url(service.listenAddress, port), via: 'bound-address', reason: `${where} and ${what}, listening on ${service.listenAddress} only` }];
      }
      return [{ target: url('localhost', port), via: 'host-loopback', reason: `${where} and ${what}, so it is on localhost:${port}` }];
    }
    if (service.listen === 'specific' && service.listenAddress !== null) {
      return [{ target: url(service.listenAddress, port), via: 'bound-address', reason: `${what}, listening on ${service.listenAddress}, an address of the host that ${cloudflared.label} can route to` }];
    }
    if (service.listen === 'loopback' || cloudflared.gatewayName === null) return [];
    return [{
      target: url(cloudflared.gatewayName, port),
      via: 'host-gateway',
      reason: `${what} and ${cloudflared.label} maps ${cloudflared.gatewayName} to the host gateway` +
        (service.listen === 'unknown' ? ' (the service must listen on 0.0.0.0 or the gateway address, not only 127.0.0.1)' : ''),
    }];
  }

  // The service is a container with its own network namespace.
  const candidates: TargetCandidate[] = [];
  if (!cloudflared.onHostNetwork) {
    const shared = cloudflared.networks.filter((n) => service.networks.includes(n) && hasNameResolution(n));
    if (shared.length > 0) {
      const network = preferred !== null && shared.includes(preferred) ? preferred : shared[0]!;
      const others = shared.filter((n) => n !== network);
      const how = preferred !== null && network === preferred
        ? 'the preferred network'
        : shared.length > 1 ? 'the first shared network by name' : 'a shared user-defined network';
      candidates.push({
        target: url(service.name, service.port),
        via: 'shared-network',
        network,
        reason: `${cloudflared.label} and ${service.label} are both on "${network}" (${how}; Docker resolves container names there)` +
          (others.length > 0 ? `; also shared: ${others.map((n) => `"${n}"`).join(', ')}` : ''),
      });
    }
  }
  for (const binding of service.bindings) {
    const hostPort = binding.hostPort!;
    const kind = bindKind(binding.hostIp);
    const published = `${binding.hostIp || '0.0.0.0'}:${hostPort}->${service.port}/tcp`;
    if (cloudflared.onHostNetwork) {
      const where = cloudflared.name === null ? 'cloudflared runs on the host' : `${cloudflared.label} uses network_mode "host"`;
      if (kind === 'specific') {
        candidates.push({ target: url(binding.hostIp!, hostPort), via: 'bound-address', reason: `${where} and ${service.label} publishes ${published}, bound to that address only` });
      } else {
        candidates.push({ target: url('localhost', hostPort), via: 'host-loopback', reason: `${where} and ${service.label} publishes ${published}` });
      }
    } else if (kind === 'specific') {
      candidates.push({ target: url(binding.hostIp!, hostPort), via: 'bound-address', reason: `${service.label} publishes ${published}, an address of the host that ${cloudflared.label} can route to` });
    } else if (kind === 'all-interfaces' && cloudflared.gatewayName !== null) {
      candidates.push({ target: url(cloudflared.gatewayName, hostPort), via: 'host-gateway', reason: `${service.label} publishes ${published} on all interfaces and ${cloudflared.label} maps ${cloudflared.gatewayName} to the host gateway` });
    }
  }
  return uniqueBy(candidates, (c) => c.target);
}

// ---------------------------------------------------------------------------------------------
// Refusals: what is wrong, and the exact changes that would fix it.

function refuse(
  cloudflared: CloudflaredView,
  service: ServiceView,
  scheme: string,
  preferred: string | null,
  blocked: string | null,
): TargetRefused {
  const details: TargetRefused['details'] = {
    cloudflared: cloudflared.label,
    cloudflaredNetworks: cloudflared.onHostNetwork ? ['host'] : cloudflared.networks,
    service: service.label,
    serviceNetworks: service.kind === 'host' ? ['host'] : service.onHostNetwork ? ['host'] : service.networks,
    publishedPorts: service.kind === 'container'
      ? service.bindings.map((b) => `${b.hostIp || '0.0.0.0'}:${b.hostPort}->${service.port}/tcp`)
      : [],
  };
  const result = (reason: string, recommendations: Recommendation[]): TargetRefused =>
    ({ ok: false, code: 'TARGET_UNREACHABLE', reason, recommendations, details });

  if (service.kind === 'container' && blocked !== null) {
    if (service.state !== 'running') {
      const command = service.state === 'paused' ? `docker unpause ${service.name}` : `docker start ${service.name}`;
      const once = selectTarget({
        cloudflared: cloudflaredPlacementOf(cloudflared),
        service: { ...servicePlacementOf(service), state: 'running' },
        preferredNetwork: preferred,
        scheme: scheme as 'http' | 'https',
      });
      const recommendations: Recommendation[] = [{
        command,
        explanation: once.ok ? `Start ${service.label}; then the target is ${once.target}.` : `Start ${service.label}.`,
        ...(once.ok ? { resultingTarget: once.target } : {}),
      }];
      if (!once.ok) recommendations.push(...once.recommendations);
      return result(`${blocked}.`, recommendations);
    }
    if (service.networkMode === 'none') {
      const network = cloudflared.onHostNetwork ? null : (cloudflared.networks.find(hasNameResolution) ?? null);
      return result(`${blocked}.`, [{
        command: network === null ? `-p 127.0.0.1:${service.hostPortHint ?? service.port}:${service.port}` : `--network ${network}`,
        explanation: `Recreate ${service.label} with this option instead of --network none (a container without a network cannot be connected later).`,
      }]);
    }
    return result(`${blocked}.`, [{
      command: null,
      explanation: `Make the service in ${service.label} listen on 0.0.0.0:${service.port} (all interfaces of its container) instead of ${service.listenAddress}, then restart it with \`docker restart ${service.name}\`. Publishing the port or sharing a network does not help while it listens on loopback.`,
    }]);
  }

  const url = (host: string, port: number) => `${scheme}://${host}:${port}`;

  if (service.kind === 'host' || service.onHostNetwork) {
    // Only reachable here when cloudflared is in a container on its own network namespace.
    const port = service.port;
    const what = service.kind === 'host' ? `the service on host port ${port}` : `${service.label} (network_mode "host", port ${port})`;
    if (service.listen === 'loopback') {
      return result(
        `${what} listens on ${service.listenAddress} only, which ${cloudflared.label} cannot reach from its own network namespace.`,
        [
          { command: `--network host`, explanation: `Recreate ${cloudflared.label} with this option, so it shares the host's network; then the target is ${url('localhost', port)}.`, resultingTarget: url('localhost', port) },
          { command: null, explanation: `Or make the service listen on the Docker gateway address (or 0.0.0.0 behind a firewall) and add --add-host ${HOST_GATEWAY_DEFAULT}:host-gateway to ${cloudflared.label}.` },
        ],
      );
    }
    return result(
      `${what} is on the host, and ${cloudflared.label} has no host-gateway mapping (no --add-host NAME:host-gateway), so it has no name for the host.`,
      [
        { command: `--add-host ${HOST_GATEWAY_DEFAULT}:host-gateway`, explanation: `Recreate ${cloudflared.label} with this option (compose: extra_hosts: ["${HOST_GATEWAY_DEFAULT}:host-gateway"]); then the target is ${url(HOST_GATEWAY_DEFAULT, port)} (the service must listen on 0.0.0.0 or the gateway address).`, resultingTarget: url(HOST_GATEWAY_DEFAULT, port) },
        { command: `--network host`, explanation: `Or recreate ${cloudflared.label} with this option; then the target is ${url('localhost', port)}.`, resultingTarget: url('localhost', port) },
      ],
    );
  }

  // A container service with its own network namespace, running, not on loopback.
  const svcNetworks = service.networks;
  const cfNetworks = cloudflared.networks;
  const svcUserNetworks = svcNetworks.filter(hasNameResolution);
  const cfUserNetworks = cfNetworks.filter(hasNameResolution);
  const nameTarget = url(service.name, service.port);
  const hostPort = service.hostPortHint ?? service.port;

  if (cloudflared.onHostNetwork) {
    const reason = service.bindings.length === 0
      ? `${cloudflared.name === null ? 'cloudflared runs on the host' : `${cloudflared.label} uses network_mode "host"`} and ${service.label} publishes no host port for ${service.port}/tcp (networks: ${list(svcNetworks)}); the host cannot reach it by name.`
      : `${service.label} publishes port ${service.port} only in ways the host cannot use.`;
    return result(reason, [{
      command: `-p 127.0.0.1:${hostPort}:${service.port}`,
      explanation: `Recreate ${service.label} with this option (docker run … -p 127.0.0.1:${hostPort}:${service.port} …; compose: ports: ["127.0.0.1:${hostPort}:${service.port}"]); then the target is ${url('localhost', hostPort)}.`,
      resultingTarget: url('localhost', hostPort),
    }]);
  }

  const cfName = cloudflared.name!;
  const onlyBridge = svcNetworks.includes('bridge') && cfNetworks.includes('bridge') && !cfNetworks.some((n) => svcNetworks.includes(n) && hasNameResolution(n));
  const published = service.bindings.length === 0
    ? `it publishes no host port for ${service.port}/tcp`
    : service.bindings.every((b) => bindKind(b.hostIp) === 'loopback')
      ? `its published port (${details.publishedPorts.join(', ')}) is bound to 127.0.0.1, which a container cannot reach`
      : `its published port (${details.publishedPorts.join(', ')}) needs a host-gateway mapping that ${cloudflared.label} does not have`;
  const reason = onlyBridge
    ? `${cloudflared.label} and ${service.label} share only the default "bridge" network, which has no name resolution, and ${published}. cloudflared is on ${list(cfNetworks)}; the service is on ${list(svcNetworks)}.`
    : `${cloudflared.label} and ${service.label} share no user-defined network, and ${published}. cloudflared is on ${list(cfNetworks)}; the service is on ${list(svcNetworks)}.`;

  const recommendations: Recommendation[] = [];
  if (cfUserNetworks.length > 0) {
    const network = preferred !== null && cfUserNetworks.includes(preferred) ? preferred : cfUserNetworks[0]!;
    recommendations.push({
      command: `docker network connect ${network} ${service.name}`,
      explanation: `Attach ${service.label} to cloudflared's network "${network}" (no restart needed); then the target is ${nameTarget}.`,
      resultingTarget: nameTarget,
    });
  }
  if (svcUserNetworks.length > 0) {
    const network = preferred !== null && svcUserNetworks.includes(preferred) ? preferred : svcUserNetworks[0]!;
    recommendations.push({
      command: `docker network connect ${network} ${cfName}`,
      explanation: `Or attach ${cloudflared.label} to the service's network "${network}" (no restart needed); then the target is ${nameTarget}.`,
      resultingTarget: nameTarget,
    });
  }
  if (cfUserNetworks.length === 0 && svcUserNetworks.length === 0) {
    recommendations.push({
      command: `docker network create ${SHARED_NETWORK_SUGGESTION} && docker network connect ${SHARED_NETWORK_SUGGESTION} ${cfName} && docker network connect ${SHARED_NETWORK_SUGGESTION} ${service.name}`,
      explanation: `Create a user-defined network and attach both containers to it (the default "bridge" network has no name resolution); then the target is ${nameTarget}.`,
      resultingTarget: nameTarget,
    });
  }
  if (service.bindings.some((b) => bindKind(b.hostIp) === 'all-interfaces') && cloudflared.gatewayName === null) {
    const binding = service.bindings.find((b) => bindKind(b.hostIp) === 'all-interfaces')!;
    recommendations.push({
      command: `--add-host ${HOST_GATEWAY_DEFAULT}:host-gateway`,
      explanation: `Or recreate ${cloudflared.label} with this option (compose: extra_hosts); then the target is ${url(HOST_GATEWAY_DEFAULT, binding.hostPort!)}.`,
      resultingTarget: url(HOST_GATEWAY_DEFAULT, binding.hostPort!),
    });
  }
  return result(reason, recommendations);
}

function cloudflaredPlacementOf(view: CloudflaredView): CloudflaredPlacement {
  if (view.name === null) return { kind: 'host' };
  return {
    kind: 'container',
    name: view.name,
    networkMode: view.networkMode,
    networks: view.networks,
    hostGatewayNames: view.gatewayName === null ? [] : [view.gatewayName],
    netnsOwner: view.netnsOwner,
  };
}

function servicePlacementOf(view: Extract<ServiceView, { kind: 'container' }>): Extract<ServicePlacement, { kind: 'container' }> {
  return {
    kind: 'container',
    name: view.name,
    state: view.state,
    networkMode: view.networkMode,
    networks: view.networks,
    ports: view.bindings,
    port: view.port,
    listenAddress: view.listenAddress,
    requestedAs: view.requestedAs,
    netnsOwner: view.netnsOwner,
    hostPortHint: view.hostPortHint,
  };
}

function unique(values: readonly string[]): string[] {
  return sortedBy([...new Set(values)], (v) => v);
}

function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => (seen.has(key(item)) ? false : (seen.add(key(item)), true)));
}

function list(networks: string[]): string {
  return networks.length === 0 ? 'no network' : networks.map((n) => `"${n}"`).join(', ');
}
