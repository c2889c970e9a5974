import { TunnelManagerError } from '../errors.ts';
import type { CloudflaredPlacement } from './target-selection.ts';
import { findContainer, networkNamespaceOf, sortedBy, type DockerContainer, type Topology } from './topology-model.ts';

/**
 * Where cloudflared runs: a container named in the config, else on the host when the manager starts it there,
 * else a container found by its image or command, else a process on the host. Deterministic when several containers match
 * (running ones first, then by name), and says which others it saw.
 */
export interface CloudflaredLocation {
  placement: CloudflaredPlacement;
  /** The container, when cloudflared runs in one. */
  container: DockerContainer | null;
  /** How it was found, in plain words. */
  evidence: string;
  /** Other containers that also look like cloudflared (names, sorted). */
  otherCandidates: string[];
}

export interface LocateCloudflaredOptions {
  /** `docker.cloudflaredContainer` from the config: the container to use, by name or id. */
  containerName?: string | null;
  /**
   * The manager starts cloudflared itself on this host (`cloudflared.driver` spawn, child or systemd; the value names
   * the driver): then it runs on the host, whatever containers of the engine look like a cloudflared.
   */
  startedOnHostBy?: string | null;
}

const IMAGE_PATTERN = /(^|\/)cloudflared(:|@|$)/;
const COMMAND_PATTERN = /(^|[\s/])cloudflared(\s|$)/;

export function locateCloudflared(topology: Topology, options: LocateCloudflaredOptions = {}): CloudflaredLocation {
  if (options.containerName) {
    const container = findContainer(topology, options.containerName);
    if (container === undefined) {
      throw new TunnelManagerError({
        code: 'CONTAINER_NOT_FOUND',
        message: `The cloudflared container "${options.containerName}" named in docker.cloudflaredContainer does not exist.`,
        fix: `Check the name with \`docker ps -a --format '{{.Names}}'\` and correct docker.cloudflaredContainer, or remove the key to find cloudflared automatically.`,
        details: { containerName: options.containerName },
      });
    }
    return { ...placementOf(topology, container), evidence: `named in the config as "${options.containerName}"`, otherCandidates: [] };
  }

  if (options.startedOnHostBy) {
    return {
      placement: { kind: 'host' },
      container: null,
      evidence: `this manager runs cloudflared on the host (cloudflared.driver ${options.startedOnHostBy})`,
      otherCandidates: [],
    };
  }
  const candidates = sortedBy(
    topology.containers.filter(looksLikeCloudflared),
    (c) => `${c.state === 'running' ? 0 : 1} ${c.name}`,
  );
  const [chosen, ...others] = candidates;
  if (chosen === undefined) {
    return {
      placement: { kind: 'host' },
      container: null,
      evidence: 'no container runs a cloudflared image or command, so cloudflared runs on the host',
      otherCandidates: [],
    };
  }
  const how = IMAGE_PATTERN.test(chosen.image) ? `image "${chosen.image}"` : `command "${chosen.command}"`;
  return {
    ...placementOf(topology, chosen),
    evidence: `container "${chosen.name}" (${chosen.state}) found by its ${how}` +
      (others.length > 0 ? `; also seen: ${others.map((c) => c.name).join(', ')} (set docker.cloudflaredContainer to choose)` : ''),
    otherCandidates: others.map((c) => c.name),
  };
}

function looksLikeCloudflared(container: DockerContainer): boolean {
  return IMAGE_PATTERN.test(container.image) || (container.command !== null && COMMAND_PATTERN.test(container.command));
}

function placementOf(topology: Topology, container: DockerContainer): Pick<CloudflaredLocation, 'placement' | 'container'> {
  const netns = networkNamespaceOf(topology, container);
  return {
    container,
    placement: {
      kind: 'container',
      name: container.name,
      networkMode: netns.special ?? container.networkMode,
      networks: netns.networks.map((m) => m.networkName),
      // A container joined to another's namespace also uses that container's /etc/hosts.
      hostGatewayNames: hostGatewayNames(netns.owner.extraHosts),
      netnsOwner: netns.owner.name,
    },
  };
}

/** Names that `--add-host NAME:host-gateway` (or Docker Desktop's host.docker.internal) map to the host. */
export function hostGatewayNames(extraHosts: readonly string[]): string[] {
  const names: string[] = [];
  for (const entry of extraHosts) {
    const separator = entry.indexOf(':');
    if (separator <= 0) continue;
    const name = entry.slice(0, separator);
    const address = entry.slice(separator + 1);
    if (address === 'host-gateway' || name === 'host.docker.internal') names.push(name);
  }
  return sortedBy([...new Set(names)], (n) => n);
}
