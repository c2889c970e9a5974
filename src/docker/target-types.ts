import type { PortBinding } from './topology-model.ts';

/**
 * The vocabulary of target selection (target-selection.ts): where cloudflared and the service run (the input), a
 * chosen target with its alternatives, or a refusal with the changes that would fix it (the answer).
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
