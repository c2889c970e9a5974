import { sortedBy, type PortBinding } from './topology-model.ts';
import type { CloudflaredPlacement, ServicePlacement } from './target-types.ts';

/**
 * The normalized views target selection reasons on: sorted, deduplicated, with `network_mode: host` folded in, and
 * the small vocabulary shared by the candidates (target-candidates.ts) and the refusals (target-refusal.ts).
 */

export const HOST_GATEWAY_DEFAULT = 'host.docker.internal';
export const SHARED_NETWORK_SUGGESTION = 'tunnel-manager';

export interface CloudflaredView {
  onHostNetwork: boolean;
  label: string;
  name: string | null;
  networkMode: string | null;
  networks: string[];
  gatewayName: string | null;
  netnsOwner: string | null;
}

/** A port binding published on the host (its host port is known). */
export type PublishedBinding = PortBinding & { hostPort: number };

export type ListenKind = 'any' | 'loopback' | 'specific' | 'unknown';

export interface ContainerServiceView {
  kind: 'container';
  label: string;
  name: string;
  state: string;
  networkMode: string | null;
  onHostNetwork: boolean;
  networks: string[];
  bindings: PublishedBinding[];
  port: number;
  listen: ListenKind;
  listenAddress: string | null;
  requestedAs: string | null;
  netnsOwner: string;
  hostPortHint: number | null;
}

export type ServiceView = { kind: 'host'; label: string; port: number; listen: ListenKind; listenAddress: string | null } | ContainerServiceView;

export function normalizeCloudflared(placement: CloudflaredPlacement): CloudflaredView {
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

export function normalizeService(placement: ServicePlacement): ServiceView {
  const listenAddress = placement.listenAddress ?? null;
  if (placement.kind === 'host') {
    return { kind: 'host', label: `host service on port ${placement.port}`, port: placement.port, listen: listenKind(listenAddress), listenAddress };
  }
  const bindings = sortedBy(
    placement.ports.filter((b): b is PublishedBinding => b.containerPort === placement.port && b.protocol === 'tcp' && b.hostPort !== null),
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

export type BindKind = 'all-interfaces' | 'loopback' | 'specific';

export function bindKind(hostIp: string | null): BindKind {
  if (hostIp === null || hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::') return 'all-interfaces';
  if (hostIp === '127.0.0.1') return 'loopback';
  return 'specific';
}

/** Docker lists `0.0.0.0` and `::` for one `-p`; they are the same binding for our purposes. */
function dedupeBindings(bindings: PublishedBinding[]): PublishedBinding[] {
  const seen = new Set<string>();
  const out: PublishedBinding[] = [];
  for (const binding of bindings) {
    const kind = bindKind(binding.hostIp);
    const key = `${binding.hostPort} ${kind === 'specific' ? binding.hostIp : kind}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(binding);
  }
  return out;
}

/** `HOST:PORT->PORT/tcp`, as `docker ps` shows a published port. */
export function publishedPort(binding: PublishedBinding, containerPort: number): string {
  return `${binding.hostIp || '0.0.0.0'}:${binding.hostPort}->${containerPort}/tcp`;
}

/** How a cloudflared on the host's network stack is described. */
export function onHostSide(cloudflared: CloudflaredView): string {
  return cloudflared.name === null ? 'cloudflared runs on the host' : `${cloudflared.label} uses network_mode "host"`;
}

/** The preferred network when it is among `networks`, else the first; undefined for none. */
export function pickNetwork(networks: readonly string[], preferred: string | null): string | undefined {
  return preferred !== null && networks.includes(preferred) ? preferred : networks[0];
}

export function cloudflaredPlacementOf(view: CloudflaredView): CloudflaredPlacement {
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

export function servicePlacementOf(view: ContainerServiceView): Extract<ServicePlacement, { kind: 'container' }> {
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

export function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => (seen.has(key(item)) ? false : (seen.add(key(item)), true)));
}

export function list(networks: string[]): string {
  return networks.length === 0 ? 'no network' : networks.map((n) => `"${n}"`).join(', ');
}
