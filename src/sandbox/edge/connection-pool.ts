import type { StandinConnection } from './standin-registrations.ts';
import { TunnelConnection } from './tunnel-connection.ts';

export type EdgeConnection = StandinConnection | TunnelConnection;

export interface EdgeConnectorInfo {
  connectorId: string;
  tunnelId: string;
  kind: 'cloudflared' | 'standin';
  /** cloudflared's version as it registered (empty for the stand-in). */
  version: string;
  /** Registered connections taking requests. */
  connections: number;
  /** Connections that unregistered and are finishing their requests. */
  draining: number;
  /** The configuration cloudflared reported after registering (a locally managed tunnel), as JSON. */
  localConfiguration: string | null;
  /** The remote configuration version cloudflared last applied (a remotely managed tunnel). */
  appliedVersion: number | null;
}

/** Who a connection belongs to: the real cloudflared says so when it registers, the stand-in in its headers. */
function identityOf(connection: EdgeConnection): Pick<EdgeConnectorInfo, 'connectorId' | 'tunnelId' | 'kind' | 'version'> {
  if (connection instanceof TunnelConnection) {
    const registration = connection.registration;
    return { connectorId: registration?.connectorId ?? '', tunnelId: registration?.tunnelId ?? '', kind: 'cloudflared', version: registration?.version ?? '' };
  }
  return { connectorId: connection.connectorId, tunnelId: connection.tunnelId, kind: 'standin', version: '' };
}

/** The registered connections of every connector, spread round robin, and what each connector reported. */
export class ConnectionPool {
  readonly all = new Set<EdgeConnection>();
  private next = 0;
  private watchers = new Set<() => void>();
  readonly localConfiguration = new Map<string, string>();
  readonly appliedVersion = new Map<string, number>();

  add(connection: EdgeConnection): void {
    this.all.add(connection);
    this.changed();
  }

  remove(connection: EdgeConnection): void {
    this.all.delete(connection);
    this.changed();
  }

  changed(): void {
    this.watchers.forEach((watcher) => watcher());
  }

  watch(watcher: () => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** The next connection taking requests, round robin over every connection of every connector. */
  pick(can: (connection: EdgeConnection) => boolean = () => true): EdgeConnection | null {
    const candidates = [...this.all].filter((connection) => connection.accepting && can(connection));
    if (candidates.length === 0) return null;
    return candidates[this.next++ % candidates.length] ?? null;
  }

  describe(): EdgeConnectorInfo[] {
    const byConnector = new Map<string, EdgeConnectorInfo>();
    for (const connection of this.all) {
      const identity = identityOf(connection);
      const info = byConnector.get(identity.connectorId) ?? {
        ...identity,
        connections: 0,
        draining: 0,
        localConfiguration: this.localConfiguration.get(identity.connectorId) ?? null,
        appliedVersion: this.appliedVersion.get(identity.connectorId) ?? null,
      };
      if (connection.accepting) info.connections += 1;
      else if (connection instanceof TunnelConnection && connection.state === 'draining') info.draining += 1;
      byConnector.set(identity.connectorId, info);
    }
    return [...byConnector.values()].filter((info) => info.connections + info.draining > 0);
  }
}
