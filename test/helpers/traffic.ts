import http from 'node:http';

/**
 * Visitors through the sandbox edge: `clients` keep-alive connections sending GET requests for `hostname` back to
 * back until stopped. Every answer that is not a 200 (or a connection error, status 0) is a failure, with when it came.
 * `keepAlive: false` (edgeTraffic): each request on a fresh connection instead. `onAnswer` (edgeTraffic) sees every
 * answer with its body and when it was sent and answered (performance.now()), e.g. to tell which origin served it.
 */
export interface Traffic {
  readonly requests: number;
  readonly failures: { status: number; at: number }[];
  stop(): Promise<{ requests: number; ok: number; failures: { status: number; at: number }[] }>;
}

/** One answer through the edge: status 0 for a connection error (body ''), times from performance.now(). */
export interface EdgeAnswer {
  status: number;
  body: string;
  sentAt: number;
  at: number;
}

export function keepAliveTraffic(edge: { host?: string; port: number }, hostname: string, clients = 4): Traffic {
  return edgeTraffic(edge, hostname, { clients, keepAlive: true });
}

export function edgeTraffic(
  edge: { host?: string; port: number },
  hostname: string,
  { clients, keepAlive, onAnswer }: { clients: number; keepAlive: boolean; onAnswer?: (answer: EdgeAnswer) => void },
): Traffic {
  const agent = new http.Agent({ keepAlive, maxSockets: clients });
  let running = true;
  let requests = 0;
  const failures: { status: number; at: number }[] = [];
  const once = () =>
    new Promise<void>((resolve) => {
      const sentAt = performance.now();
      const done = (status: number, body: string): void => {
        const at = performance.now();
        requests += 1;
        if (status !== 200) failures.push({ status, at });
        onAnswer?.({ status, body, sentAt, at });
        resolve();
      };
      http
        .get({ host: edge.host ?? '127.0.0.1', port: edge.port, path: '/', headers: { host: hostname }, agent }, (response) => {
          let body = '';
          // The body is read only for onAnswer: the other callers count statuses.
          if (onAnswer) response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          else response.resume();
          response.on('end', () => done(response.statusCode ?? 0, body));
        })
        .on('error', () => done(0, ''));
    });
  const loops = Array.from({ length: clients }, async () => {
    while (running) await once();
  });
  return {
    get requests() {
      return requests;
    },
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return { requests, ok: requests - failures.length, failures };
    },
  };
}
