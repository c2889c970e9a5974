import http from 'node:http';
import tls, { type TLSSocket } from 'node:tls';
import { splitHostPort } from '../../host-port.ts';
import { EDGE_SERVER_NAMES, issueServerCertificate, loadOrCreateCertificateAuthority } from './certificates.ts';
import { ConnectionPool, type EdgeConnectorInfo } from './connection-pool.ts';
import { createPublicServer } from './public-listener.ts';
import { TunnelConnection, type RegistrationDecision } from './tunnel-connection.ts';
import type { ConnectionRegistration } from './tunnel-rpc.ts';
import type { TrafficLog } from '../traffic-log.ts';

export type { EdgeConnectorInfo } from './connection-pool.ts';

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
  /** Where each visitor's request is recorded (time, host, status, bytes): the emulator's GraphQL Analytics reads it. */
  traffic?: TrafficLog;
}

function listen(server: http.Server | tls.Server, address: string): Promise<string> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = server.address();
      if (bound === null || typeof bound === 'string') reject(new Error(`The sandbox edge listens on ${String(bound)}, not on a TCP port.`));
      else resolve(`${host}:${bound.port}`);
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

/** Pushes the current remote configuration to each cloudflared of `tunnelId` that has not applied it yet. */
async function pushConfiguration(pool: ConnectionPool, tunnels: TunnelDirectory | undefined, tunnelId: string): Promise<void> {
  const remote = tunnels?.lookup(tunnelId)?.remoteConfiguration;
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

/** Where the real cloudflared's TLS connections land: each one a TunnelConnection, known to `open` until it closes. */
function tunnelConnectionAcceptor(pool: ConnectionPool, options: SandboxEdgeOptions, location: string, open: Set<TunnelConnection>): (socket: TLSSocket) => void {
  return (socket) => {
    const connection = new TunnelConnection({
      socket,
      location,
      closeWhenDrained: options.keepDrainedConnections !== true,
      decide: (registration) => decideRegistration(options.tunnels, registration),
      onRegistered: (registered) => {
        pool.add(registered);
        if (registered.remotelyManaged && registered.registration) void pushConfiguration(pool, options.tunnels, registered.registration.tunnelId);
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
    open.add(connection);
    socket.on('close', () => {
      open.delete(connection);
      pool.remove(connection);
    });
  };
}

interface TunnelListener {
  server: tls.Server;
  address: string;
  caPath: string;
}

/** The TLS listener for the real cloudflared, with a certificate from the sandbox's CA. */
async function startTunnelListener(tunnelListen: string, caDir: string | undefined, accept: (socket: TLSSocket) => void): Promise<TunnelListener> {
  if (caDir === undefined) throw new Error('the sandbox edge needs caDir to listen for cloudflared (its CA is kept there)');
  const ca = loadOrCreateCertificateAuthority(caDir);
  const leaf = issueServerCertificate(ca, EDGE_SERVER_NAMES);
  // cloudflared offers no ALPN and only the P-256 curve; it is the HTTP/2 server on this connection.
  const server = tls.createServer({ key: leaf.keyPem, cert: `${leaf.certPem}${ca.certPem}`, minVersion: 'TLSv1.2', ecdhCurve: 'P-256:X25519' }, accept);
  server.on('tlsClientError', () => undefined);
  return { server, address: await listen(server, tunnelListen), caPath: ca.certPath };
}

function waitForConnectors(pool: ConnectionPool, address: string, timeoutMs: number, until: (connectors: EdgeConnectorInfo[]) => boolean): Promise<void> {
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
}

export async function startSandboxEdge(options: SandboxEdgeOptions): Promise<SandboxEdge> {
  const pool = new ConnectionPool();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const location = options.location ?? 'sbx01';
  /** Every TLS connection from a cloudflared, registered or not (closed with the edge). */
  const tunnelConnections = new Set<TunnelConnection>();
  const server = createPublicServer(pool, agent, location, options.traffic);
  const address = await listen(server, options.listen);
  const tunnel =
    options.tunnelListen === undefined
      ? null
      : await startTunnelListener(options.tunnelListen, options.caDir, tunnelConnectionAcceptor(pool, options, location, tunnelConnections));
  const unsubscribe = options.tunnels?.onConfigurationChange?.((tunnelId) => void pushConfiguration(pool, options.tunnels, tunnelId));

  return {
    address,
    port: Number(address.slice(address.lastIndexOf(':') + 1)),
    tunnelAddress: tunnel?.address ?? null,
    caPath: tunnel?.caPath ?? null,
    connectors: () => pool.describe(),
    waitForConnectors: (timeoutMs, until = (connectors) => connectors.some((connector) => connector.connections > 0)) =>
      waitForConnectors(pool, address, timeoutMs, until),
    async close() {
      unsubscribe?.();
      for (const connection of tunnelConnections) connection.close();
      await Promise.all([
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
        new Promise<void>((resolve) => (tunnel ? tunnel.server.close(() => resolve()) : resolve())),
      ]);
      agent.destroy();
    },
  };
}
