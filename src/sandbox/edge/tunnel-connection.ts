import { randomBytes } from 'node:crypto';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { isJsonObject } from '../../json-guards.ts';
import { CapnpError, readFrame } from './capnp.ts';
import { decodeResponseHeaders, requestHeadersFor, statusLine, type VisitorRequest } from './proxy-headers.ts';
import {
  decodeLocalConfiguration,
  decodeRegistration,
  decodeRpcMessage,
  encodeBootstrapReturn,
  encodeEmptyReturn,
  encodeExceptionReturn,
  encodeRegistrationReturn,
  METHOD_REGISTER_CONNECTION,
  METHOD_UNREGISTER_CONNECTION,
  METHOD_UPDATE_LOCAL_CONFIGURATION,
  REGISTRATION_SERVER_INTERFACE,
  uuidText,
  type ConnectionRegistration,
  type RegistrationAnswer,
  type RpcMessage,
} from './tunnel-rpc.ts';

/**
 * One HTTP/2 connection from the real cloudflared, as Cloudflare's edge holds it (docs/cloudflared.md, "The sandbox
 * edge and the real cloudflared"). cloudflared dials out with TLS and then acts as the HTTP/2 *server*: the edge is
 * the client and opens every stream.
 *
 * - The first stream is the control stream (`cf-cloudflared-proxy-connection-upgrade: control-stream`), which carries
 *   Cap'n Proto RPC both ways: cloudflared asks for the edge's RegistrationServer and registers the connection
 *   (tunnel, credentials, connector id, connection index); at shutdown it unregisters.
 * - Every visitor request is a new stream with ordinary HTTP/2 headers; the origin's headers come back serialized
 *   in `cf-cloudflared-response-headers`. A websocket is a stream kept open with the upgrade header `websocket`.
 * - A remotely managed tunnel's configuration is pushed as a stream with the upgrade header `update-configuration`.
 * - Once the connection has unregistered, it gets no new stream; when its last one ends the edge closes it, and
 *   cloudflared, which waits for exactly that, exits.
 */

export type ConnectionState = 'connecting' | 'registered' | 'draining' | 'closed';

/** How the edge answers a registration: the tunnel directory's decision. */
export type RegistrationDecision = { ok: true; remotelyManaged: boolean } | { ok: false; cause: string; shouldRetry: boolean };

export interface TunnelConnectionOptions {
  socket: TLSSocket;
  /** The location name the edge gives, as Cloudflare's colo names ("lhr01"). */
  location: string;
  decide: (registration: ConnectionRegistration) => RegistrationDecision;
  onRegistered: (connection: TunnelConnection) => void;
  /** Unregistered (draining) or closed: the pool stops sending it requests. */
  onUnavailable: (connection: TunnelConnection) => void;
  onLocalConfiguration?: (connection: TunnelConnection, json: string) => void;
  /** How long cloudflared has to register before the edge gives up on the connection. */
  registrationTimeoutMs?: number;
  /** Close an unregistered connection once its last stream ended (Cloudflare's edge does); default true. */
  closeWhenDrained?: boolean;
}

/** The RegistrationServer capability's export id (any number works; the real edge's is small). */
const EXPORT_ID = 1;

const CONTROL_STREAM_HEADERS: OutgoingHttpHeaders = {
  ':method': 'GET',
  ':path': '/',
  'cf-cloudflared-proxy-connection-upgrade': 'control-stream',
};

export class TunnelConnection {
  /** The connection's id, as the edge tells cloudflared (its log says `connection=<id>`). */
  readonly id = randomBytes(16);
  state: ConnectionState = 'connecting';
  registration: ConnectionRegistration | null = null;
  remotelyManaged = false;
  /** Visitor streams open on this connection. */
  inFlight = 0;
  private readonly session: ClientHttp2Session;
  private control: ClientHttp2Stream | null = null;
  private pending: Buffer = Buffer.alloc(0);
  private readonly registrationTimer: NodeJS.Timeout;

  constructor(private readonly options: TunnelConnectionOptions) {
    const { socket } = options;
    this.session = http2.connect('http://h2.cftunnel.com', { createConnection: () => socket });
    this.session.on('error', () => this.close());
    this.session.on('close', () => this.markClosed());
    socket.on('close', () => this.markClosed());
    this.registrationTimer = setTimeout(() => {
      if (this.state === 'connecting') this.close();
    }, options.registrationTimeoutMs ?? 15_000);
    this.registrationTimer.unref();
    this.openControlStream();
  }

  get connectionId(): string {
    return uuidText(this.id);
  }

  get accepting(): boolean {
    return this.state === 'registered';
  }

  private openControlStream(): void {
    const control = this.session.request(CONTROL_STREAM_HEADERS, { endStream: false });
    this.control = control;
    control.on('data', (chunk: Buffer) => this.receive(chunk));
    control.on('error', () => undefined);
    // cloudflared ends the control stream after unregistering, or after a refused registration.
    control.on('end', () => {
      control.end();
      if (this.state === 'connecting') this.close();
      else this.unregistered();
    });
  }

  private receive(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      for (;;) {
        const message = readFrame(this.pending);
        if (message === null) return;
        this.pending = this.pending.subarray(message.length);
        this.handle(decodeRpcMessage(message.segments));
      }
    } catch (error) {
      if (!(error instanceof CapnpError)) throw error;
      this.close();
    }
  }

  private send(message: Buffer): void {
    if (this.control !== null && !this.control.destroyed && this.control.writable) this.control.write(message);
  }

  private handle(message: RpcMessage): void {
    if (message.kind === 'bootstrap') {
      this.send(encodeBootstrapReturn(message.questionId, EXPORT_ID));
      return;
    }
    if (message.kind !== 'call') return; // Finish, Release and Abort need nothing from the edge.
    if (message.interfaceId !== REGISTRATION_SERVER_INTERFACE) {
      this.send(encodeExceptionReturn(message.questionId, `the edge serves no interface 0x${message.interfaceId.toString(16)}`));
      return;
    }
    switch (message.methodId) {
      case METHOD_REGISTER_CONNECTION:
        this.send(encodeRegistrationReturn(message.questionId, this.register(decodeRegistration(message.params))));
        if (this.state === 'registered') this.options.onRegistered(this);
        return;
      case METHOD_UNREGISTER_CONNECTION:
        this.send(encodeEmptyReturn(message.questionId));
        this.unregistered();
        return;
      case METHOD_UPDATE_LOCAL_CONFIGURATION:
        this.options.onLocalConfiguration?.(this, decodeLocalConfiguration(message.params));
        this.send(encodeEmptyReturn(message.questionId));
        return;
      default:
        this.send(encodeExceptionReturn(message.questionId, `RegistrationServer has no method ${message.methodId}`));
    }
  }

  private register(registration: ConnectionRegistration): RegistrationAnswer {
    this.registration = registration;
    const decision = this.options.decide(registration);
    if (!decision.ok) return decision;
    clearTimeout(this.registrationTimer);
    this.state = 'registered';
    this.remotelyManaged = decision.remotelyManaged;
    return { ok: true, connectionId: this.id, location: this.options.location, remotelyManaged: decision.remotelyManaged };
  }

  /** cloudflared unregistered (it is shutting down): no new streams; closed once the last one has ended. */
  private unregistered(): void {
    if (this.state === 'closed' || this.state === 'draining') return;
    const wasAvailable = this.state === 'registered';
    this.state = 'draining';
    if (wasAvailable) this.options.onUnavailable(this);
    this.closeWhenIdle();
  }

  private closeWhenIdle(): void {
    if (this.state === 'draining' && this.inFlight === 0 && this.options.closeWhenDrained !== false) this.close();
  }

  private markClosed(): void {
    if (this.state === 'closed') return;
    const wasAvailable = this.state === 'registered';
    this.state = 'closed';
    clearTimeout(this.registrationTimer);
    if (wasAvailable) this.options.onUnavailable(this);
  }

  /**
   * Closes the connection. Deferred to the next turn of the event loop: destroying an HTTP/2 session (or cancelling a
   * stream) from inside one of its own callbacks trips Node's nghttp2 memory accounting and aborts the process
   * ("Assertion failed: (current_nghttp2_memory_) >= (previous_size)", nodejs/node#38964).
   */
  close(): void {
    this.markClosed();
    setImmediate(() => {
      this.session.destroy();
      this.options.socket.destroy();
    });
  }

  private openStream(headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream | null {
    if (this.session.destroyed || this.session.closed) return null;
    try {
      const stream = this.session.request(headers, { endStream });
      this.inFlight += 1;
      stream.once('close', () => {
        this.inFlight -= 1;
        this.closeWhenIdle();
      });
      return stream;
    } catch {
      return null;
    }
  }

  /**
   * Carries one visitor request to cloudflared and its answer back. Resolves false when cloudflared could not be
   * asked at all (the connection was gone before any answer): the edge then tries another connection.
   */
  forward(req: VisitorRequest, res: ServerResponse, body: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      const stream = this.openStream(requestHeadersFor(req), body.length === 0);
      if (stream === null) {
        resolve(false);
        return;
      }
      let answered = false;
      stream.on('response', (headers: IncomingHttpHeaders) => {
        answered = true;
        res.writeHead(Number(headers[':status'] ?? 502), decodeResponseHeaders(headers));
        stream.pipe(res);
        resolve(true);
      });
      stream.on('error', () => {
        if (answered) res.destroy();
        else resolve(false);
      });
      stream.on('close', () => {
        if (!answered) resolve(false);
      });
      // The visitor went away first: cancel the stream (on the next turn, not inside a callback: see close()).
      res.on('close', () => setImmediate(() => stream.closed || stream.close(http2.constants.NGHTTP2_CANCEL)));
      if (body.length > 0) stream.end(body);
    });
  }

  /** A visitor's websocket: the stream stays open and carries the raw bytes both ways once cloudflared said yes. */
  upgrade(req: VisitorRequest, visitor: Duplex, head: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      const stream = this.openStream({ ...requestHeadersFor(req), 'cf-cloudflared-proxy-connection-upgrade': 'websocket' }, false);
      if (stream === null) {
        resolve(false);
        return;
      }
      let answered = false;
      stream.on('response', (headers: IncomingHttpHeaders) => {
        answered = true;
        resolve(true);
        const status = Number(headers[':status'] ?? 502);
        const origin = decodeResponseHeaders(headers);
        if (status !== 200) {
          visitor.end(statusLine(status, origin));
          setImmediate(() => stream.closed || stream.close());
          return;
        }
        // cloudflared turns the origin's 101 into 200; the visitor gets the 101 back.
        visitor.write(statusLine(101, { ...origin, connection: 'Upgrade', upgrade: origin.upgrade ?? 'websocket' }));
        if (head.length > 0) stream.write(head);
        stream.pipe(visitor);
        visitor.pipe(stream);
      });
      const end = (): void => {
        if (!answered) resolve(false);
        visitor.destroy();
        setImmediate(() => stream.closed || stream.close());
      };
      stream.on('error', end);
      stream.on('close', end);
      visitor.on('error', end);
      visitor.on('close', end);
    });
  }

  /** Pushes a remotely managed tunnel's configuration; resolves with cloudflared's answer. */
  pushConfiguration(version: number, config: unknown): Promise<{ lastAppliedVersion: number; err: unknown }> {
    return new Promise((resolve, reject) => {
      const stream = this.openStream({ ':method': 'PUT', ':path': '/', 'cf-cloudflared-proxy-connection-upgrade': 'update-configuration' }, false);
      if (stream === null) {
        reject(new Error('the connection is closed'));
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        try {
          const answer: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (!isJsonObject(answer) || typeof answer.lastAppliedVersion !== 'number') {
            throw new Error(`cloudflared answered the configuration push with ${JSON.stringify(answer)}, not {"lastAppliedVersion":N,"err":...}`);
          }
          resolve({ lastAppliedVersion: answer.lastAppliedVersion, err: answer.err });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      stream.on('error', reject);
      stream.end(JSON.stringify({ version, config }));
    });
  }
}
