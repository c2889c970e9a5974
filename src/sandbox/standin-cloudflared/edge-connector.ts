import http, { type ClientRequest } from 'node:http';
import {
  CONNECT_PATH,
  HEADER_CONNECTION_INDEX,
  HEADER_CONNECTOR_ID,
  HEADER_LOCATION,
  HEADER_ORIGIN,
  HEADER_TUNNEL_ID,
  splitHostPort,
} from '../edge/standin-protocol.ts';

/**
 * The stand-in's side of the HA connections: keeps `connections` registrations open with the sandbox edge,
 * reconnecting with a short backoff when one drops (as cloudflared does when an edge connection breaks).
 */
export class EdgeConnector {
  private readonly ready = new Set<number>();
  private readonly requests = new Map<number, ClientRequest>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly options: {
      edge: string;
      connectorId: string;
      tunnelId: string;
      /** Where the edge sends public requests for this connector: http://127.0.0.1:PORT */
      originUrl: string;
      connections: number;
      onChange: (readyConnections: number) => void;
      /** A connection registered, at the edge's location. */
      onRegistered?: (index: number, location: string) => void;
      log: (level: 'INF' | 'WRN' | 'ERR', message: string) => void;
    },
  ) {}

  get readyConnections(): number {
    return this.ready.size;
  }

  start(): void {
    for (let index = 0; index < this.options.connections; index += 1) this.open(index, 0);
  }

  /** Unregisters every connection: the edge stops sending new requests here. */
  stop(): void {
    this.stopped = true;
    this.timers.forEach((timer) => clearTimeout(timer));
    this.timers.clear();
    this.requests.forEach((request) => request.destroy());
    this.requests.clear();
    if (this.ready.size > 0) {
      this.ready.clear();
      this.options.onChange(0);
    }
  }

  private open(index: number, failures: number): void {
    if (this.stopped) return;
    const { host, port } = splitHostPort(this.options.edge);
    const request = http.request({
      host,
      port,
      method: 'POST',
      path: CONNECT_PATH,
      agent: false,
      headers: {
        [HEADER_CONNECTOR_ID]: this.options.connectorId,
        [HEADER_TUNNEL_ID]: this.options.tunnelId,
        [HEADER_ORIGIN]: this.options.originUrl,
        [HEADER_CONNECTION_INDEX]: String(index),
      },
    });
    this.requests.set(index, request);
    let registered = false;
    let gone = false;
    const lost = (why: string): void => {
      if (gone) return;
      gone = true;
      if (this.requests.get(index) === request) this.requests.delete(index);
      if (this.ready.delete(index)) this.options.onChange(this.ready.size);
      if (this.stopped) return;
      const next = registered ? 0 : failures + 1;
      const delay = Math.min(2000, 100 * 2 ** Math.min(next, 5));
      this.options.log('WRN', `Connection ${index} to the edge lost (${why}); retrying in ${delay} ms`);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.open(index, next);
      }, delay);
      this.timers.add(timer);
    };
    request.on('response', (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        lost(`edge answered ${response.statusCode}`);
        return;
      }
      registered = true;
      this.ready.add(index);
      this.options.onChange(this.ready.size);
      const location = String(response.headers[HEADER_LOCATION] ?? 'unknown');
      this.options.onRegistered?.(index, location);
      this.options.log('INF', `Registered tunnel connection connIndex=${index} edge=${this.options.edge} location=${location}`);
      response.resume();
      response.on('close', () => lost('edge closed the connection'));
    });
    request.on('error', (error) => lost(error.message));
    request.end();
  }
}
