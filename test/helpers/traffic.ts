import http from 'node:http';

/**
 * Visitors through the sandbox edge: `clients` keep-alive connections sending GET requests for `hostname` back to
 * back until stopped. Every answer that is not a 200 (or a connection error, status 0) is a failure, with when it came.
 * `keepAlive: false` (edgeTraffic): each request on a fresh connection instead.
 */
export interface Traffic {
  readonly requests: number;
  readonly failures: { status: number; at: number }[];
  stop(): Promise<{ requests: number; ok: number; failures: { status: number; at: number }[] }>;
}

export function keepAliveTraffic(edge: { host?: string; port: number }, hostname: string, clients = 4): Traffic {
  return edgeTraffic(edge, hostname, { clients, keepAlive: true });
}

export function edgeTraffic(edge: { host?: string; port: number }, hostname: string, { clients, keepAlive }: { clients: number; keepAlive: boolean }): Traffic {
  const agent = new http.Agent({ keepAlive, maxSockets: clients });
  let running = true;
  let requests = 0;
  const failures: { status: number; at: number }[] = [];
  const once = () =>
    new Promise<void>((resolve) => {
      const done = (status: number): void => {
        requests += 1;
        if (status !== 200) failures.push({ status, at: performance.now() });
        resolve();
      };
      http
        .get({ host: edge.host ?? '127.0.0.1', port: edge.port, path: '/', headers: { host: hostname }, agent }, (response) => {
          response.resume();
          response.on('end', () => done(response.statusCode ?? 0));
        })
        .on('error', () => done(0));
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
