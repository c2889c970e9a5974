import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import { splitHostPort } from '../../host-port.ts';
import { EDGE_SERVER_NAMES, issueServerCertificate, loadOrCreateCertificateAuthority } from './certificates.ts';
import { acceptStandinRegistration, type StandinConnection } from './standin-registrations.ts';
import { CONNECT_PATH, STATUS_PATH } from './standin-protocol.ts';
import { TunnelConnection, type RegistrationDecision } from './tunnel-connection.ts';
import type { ConnectionRegistration } from './tunnel-rpc.ts';

/**
 * The sandbox edge: the public side of the sandbox's tunnel, playing Cloudflare's part
 * (docs/decisions/0006-sandbox-edge-and-replica-reload.md, 0007-a-local-edge-for-the-real-cloudflared.md).
 *
 * - The **public listener** (HTTP on 127.0.0.1) takes visitors' requests, with the Host header naming the hostname,
 *   and relays each one over a registered connection of the tunnel, spread over every registered connection of every
 *   running replica; with none it answers 530 / error 1033, as Cloudflare does.
 * - The **tunnel listener** (TLS, `tunnelListen`) is where the real cloudflared connects, pointed here with
 *   `--edge HOST:PORT` (once per connection), `--cacert <caDir>/edge-ca.pem` and `--protocol http2`: each TLS
 *   connection is a TunnelConnection (tunnel-connection.ts) speaking cloudflared's HTTP/2 and registration RPC.
 * - The stand-in cloudflared registers over plain HTTP on the public listener (standin-registrations.ts).
 *
 * A connection that unregisters (a replica shutting down) gets no new request and is closed once its requests are
 * done; a connection that drops is forgotten at once.
 */

export interface TunnelRecord {
  accountTag: string;
  /** The tunnel's secret (its credentials file's TunnelSecret, decoded); null: not checked. */
  secret: Buffer | null;
  /** The configuration Cloudflare holds for a remotely managed tunnel; null when the tunnel is locally managed. */
  remoteConfiguration: { version: number; config: unknown } | null;
}

/** What the edge knows of the account's tunnels (the sandbox wires the Cloudflare API emulator here). */
export interface TunnelDirectory {
  /** The tunnel, or null when the account has no such tunnel. */
  lookup(tunnelId: string): TunnelRecord | null;
  /** Calls `listener` with a tunnel's id when its remote configuration changes; returns an unsubscribe. */
  onConfigurationChange?(listener: (tunnelId: string) => void): () => void;
}

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

export interface SandboxEdge {
  /** "HOST:PORT" of the public listener. */
  address: string;
  port: number;
  /** "HOST:PORT" of the tunnel listener (TLS), when one was asked for. */
  tunnelAddress: string | null;
  /** The CA file cloudflared's `--cacert` names, when the tunnel listener runs. */
  caPath: string | null;
  connectors(): EdgeConnectorInfo[];
  /** Resolves when `until` holds for the connectors (default: one connection takes requests), or rejects after timeoutMs. */
  waitForConnectors(timeoutMs: number, until?: (connectors: EdgeConnectorInfo[]) => boolean): Promise<void>;
  close(): Promise<void>;
}

export interface SandboxEdgeOptions {
  /** Public listener, "HOST:PORT" (port 0: a free one). */
  listen: string;
  /** Tunnel listener for the real cloudflared, "HOST:PORT"; needs `caDir`. */
  tunnelListen?: string;
  /** Where the edge's CA is kept (made on first use). */
  caDir?: string;
  tunnels?: TunnelDirectory;
  /** The location name given to cloudflared at registration. */
  location?: string;
  /**
   * A fault knob: keep a connection open after cloudflared unregistered it, instead of closing it once its requests are
   * done. cloudflared then stays up for its whole --grace-period, as it would with an edge that never hangs up.
   */
  keepDrainedConnections?: boolean;
}

type EdgeConnection = StandinConnection | TunnelConnection;

/** Cloudflare answers 530 with error 1033 when no connector of the tunnel is connected. */
function answerNoConnector(res: ServerResponse): void {
  res.writeHead(530, { 'content-type': 'text/plain; charset=utf-8', 'cf-error-code': '1033' });
  res.end('error code: 1033\n');
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function listen(server: http.Server | tls.Server, address: string): Promise<string> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(`${host}:${(server.address() as AddressInfo).port}`);
    });
  });
}

/** The registration decision for the real cloudflared: the tunnel must exist and the secret match. */
function decideRegistration(tunnels: TunnelDirectory | undefined, registration: ConnectionRegistration): RegistrationDecision {
  if (tunnels === undefined) return { ok: true, remotelyManaged: false };
  const tunnel = tunnels.lookup(registration.tunnelId);
  // cloudflared retries an "Unauthorized" answer (its credentials may be fixed meanwhile) and exits on others.
  if (tunnel === null) return { ok: false, cause: `Unauthorized: tunnel ${registration.tunnelId} does not exist in this account`, shouldRetry: false };
  if (tunnel.secret !== null && !tunnel.secret.equals(registration.tunnelSecret)) {
    return { ok: false, cause: 'Unauthorized: Invalid tunnel secret', shouldRetry: false };
  }
  return { ok: true, remotelyManaged: tunnel.remoteConfiguration !== null };
}

class ConnectionPool {
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
    return candidates[this.next++ % candidates.length] as EdgeConnection;
  }

  describe(): EdgeConnectorInfo[] {
    const byConnector = new Map<string, EdgeConnectorInfo>();
    for (const connection of this.all) {
      const real = connection instanceof TunnelConnection;
      const connectorId = real ? (connection.registration?.connectorId ?? '') : connection.connectorId;
      const info = byConnector.get(connectorId) ?? {
        connectorId,
        tunnelId: real ? (connection.registration?.tunnelId ?? '') : connection.tunnelId,
        kind: real ? ('cloudflared' as const) : ('standin' as const),
        version: real ? (connection.registration?.version ?? '') : '',
        connections: 0,
        draining: 0,
        localConfiguration: this.localConfiguration.get(connectorId) ?? null,
        appliedVersion: this.appliedVersion.get(connectorId) ?? null,
      };
      if (connection.accepting) info.connections += 1;
      else if (real && connection.state === 'draining') info.draining += 1;
      byConnector.set(connectorId, info);
    }
    return [...byConnector.values()].filter((info) => info.connections + info.draining > 0);
  }
}

export async function startSandboxEdge(options: SandboxEdgeOptions): Promise<SandboxEdge> {
  const pool = new ConnectionPool();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const location = options.location ?? 'sbx01';
  /** Every TLS connection from a cloudflared, registered or not (closed with the edge). */
  const tunnelConnections = new Set<TunnelConnection>();

  /** Pushes the current remote configuration to each cloudflared of `tunnelId` that has not applied it yet. */
  async function pushConfiguration(tunnelId: string): Promise<void> {
    const record = options.tunnels?.lookup(tunnelId);
    const remote = record?.remoteConfiguration;
    if (!remote) return;
    const connectors = new Set<string>();
    for (const connection of pool.all) {
      if (!(connection instanceof TunnelConnection) || !connection.accepting || connection.registration?.tunnelId !== tunnelId) continue;
      const connectorId = connection.registration.connectorId;
      if (connectors.has(connectorId) || (pool.appliedVersion.get(connectorId) ?? -1) >= remote.version) continue;
      connectors.add(connectorId);
      try {
        const answer = await connection.pushConfiguration(remote.version, remote.config);
        pool.appliedVersion.set(connectorId, answer.lastAppliedVersion);
        pool.changed();
      } catch {
        connectors.delete(connectorId);
      }
    }
  }

  function acceptTunnelConnection(socket: TLSSocket): void {
    const connection = new TunnelConnection({
      socket,
      location,
      closeWhenDrained: options.keepDrainedConnections !== true,
      decide: (registration) => decideRegistration(options.tunnels, registration),
      onRegistered: (registered) => {
        pool.add(registered);
        if (registered.remotelyManaged && registered.registration) void pushConfiguration(registered.registration.tunnelId);
      },
      onUnavailable: (gone) => {
        if (gone.state === 'closed') pool.remove(gone);
        else pool.changed();
      },
      onLocalConfiguration: (from, json) => {
        if (from.registration) pool.localConfiguration.set(from.registration.connectorId, json);
        pool.changed();
      },
    });
    tunnelConnections.add(connection);
    socket.on('close', () => {
      tunnelConnections.delete(connection);
      pool.remove(connection);
    });
  }

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    // A connection that went away between being picked and being asked is skipped: the request goes to the next one.
    let tried = 0;
    for (; tried < 8; tried += 1) {
      const connection = pool.pick();
      if (connection === null) break;
      if (await connection.forward(req, res, body)) return;
    }
    if (tried === 0) {
      answerNoConnector(res);
      return;
    }
    // Connectors were there but none answered (the one that had the request went away): a bad gateway.
    res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('error code: 502 (no connector answered)\n');
  }

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    for (let tried = 0; tried < 8; tried += 1) {
      const connection = pool.pick((candidate) => candidate instanceof TunnelConnection);
      if (!(connection instanceof TunnelConnection)) break;
      if (await connection.upgrade(req, socket, head)) return;
    }
    socket.end('HTTP/1.1 530 Origin Unreachable\r\ncf-error-code: 1033\r\ncontent-length: 0\r\n\r\n');
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === CONNECT_PATH) {
      acceptStandinRegistration(req, res, agent, location, { onOpen: (connection) => pool.add(connection), onClose: (connection) => pool.remove(connection) });
      return;
    }
    if (req.method === 'GET' && path === STATUS_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pid: process.pid, connectors: pool.describe() }));
      return;
    }
    forward(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    upgrade(req, socket, head).catch(() => socket.destroy());
  });
  server.keepAliveTimeout = 5_000;
  // Registration requests are held open for as long as the connector lives.
  server.requestTimeout = 0;
  const address = await listen(server, options.listen);

  let tunnelServer: tls.Server | null = null;
  let tunnelAddress: string | null = null;
  let caPath: string | null = null;
  if (options.tunnelListen !== undefined) {
    if (options.caDir === undefined) throw new Error('the sandbox edge needs caDir to listen for cloudflared (its CA is kept there)');
    const ca = loadOrCreateCertificateAuthority(options.caDir);
    const leaf = issueServerCertificate(ca, EDGE_SERVER_NAMES);
    caPath = ca.certPath;
    // cloudflared offers no ALPN and only the P-256 curve; it is the HTTP/2 server on this connection.
    tunnelServer = tls.createServer({ key: leaf.keyPem, cert: `${leaf.certPem}${ca.certPem}`, minVersion: 'TLSv1.2', ecdhCurve: 'P-256:X25519' }, acceptTunnelConnection);
    tunnelServer.on('tlsClientError', () => undefined);
    tunnelAddress = await listen(tunnelServer, options.tunnelListen);
  }
  const unsubscribe = options.tunnels?.onConfigurationChange?.((tunnelId) => void pushConfiguration(tunnelId));

  return {
    address,
    port: Number(address.slice(address.lastIndexOf(':') + 1)),
    tunnelAddress,
    caPath,
    connectors: () => pool.describe(),
    waitForConnectors(timeoutMs, until = (connectors) => connectors.some((connector) => connector.connections > 0)) {
      if (until(pool.describe())) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const stop = pool.watch(() => {
          if (!until(pool.describe())) return;
          stop();
          clearTimeout(timer);
          resolve();
        });
        const timer = setTimeout(() => {
          stop();
          reject(new Error(`the connectors registered with the sandbox edge at ${address} did not reach the expected state within ${timeoutMs} ms: ${JSON.stringify(pool.describe())}`));
        }, timeoutMs);
      });
    },
    async close() {
      unsubscribe?.();
      for (const connection of tunnelConnections) connection.close();
      await Promise.all([
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
        new Promise<void>((resolve) => (tunnelServer ? tunnelServer.close(() => resolve()) : resolve())),
      ]);
      agent.destroy();
    },
  };
}
