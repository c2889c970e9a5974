import { isIP } from 'node:net';

/**
 * Which `Host` and `Origin` a listener accepts, against DNS rebinding: a page on a name its author controls, whose DNS
 * is then pointed at this machine, sends that name as Host and its own origin as Origin. The rule is the MCP SDK's
 * (`localhostHostValidation`) and the conformance suite's: a listener on a loopback address answers to `localhost`,
 * `127.0.0.1` and `[::1]` on any port (or none) and to nothing else; a listener on another address answers to those and
 * to its own address. An Origin must be one of the same, or one the configuration allows (`mcp.allowedOrigins`); a
 * request without one is a program's (agents, the CLI, Prometheus) and is served, unless the browser says it is
 * cross-site. Both the MCP listener and the metrics listener use it.
 */

/** The names of this machine's loopback interface, as a Host header or an origin carries them. */
const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether a listen address (`127.0.0.1`, `::1`, `localhost`, `127.x.y.z`) is on the loopback interface. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'));
}

/** The host name of a Host header or an origin's authority (`[::1]` keeps its brackets), lower case; null when it is none. */
function hostnameOf(authority: string): string | null {
  try {
    const url = new URL(`http://${authority}`);
    return url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' ? url.hostname.toLowerCase() : null;
  } catch {
    return null;
  }
}

export interface ListenerGuard {
  /** The Host header as received when it is refused, or null when it is accepted. */
  refusedHost(host: string | undefined): string | null;
  /** The Origin as received (or why a request without one is refused), or null when it is accepted. */
  refusedOrigin(origin: string | undefined, secFetchSite: string | string[] | undefined): string | null;
}

/**
 * The guard of a listener bound to `host` (as configured: `127.0.0.1`, `::1`, `10.0.0.5`…). `allowedOrigins` are
 * whole origins (`https://dashboard.example.com`) allowed besides the listener's own names.
 */
export function listenerGuard(host: string, allowedOrigins: readonly string[] = []): ListenerGuard {
  const own = new Set(LOOPBACK_NAMES);
  if (!isLoopbackHost(host)) {
    const name = hostnameOf(isIP(host) === 6 ? `[${host}]` : host);
    if (name !== null) own.add(name);
  }
  const allowed = new Set(allowedOrigins.map((origin) => origin.toLowerCase()));
  const accepts = (authority: string): boolean => {
    const name = hostnameOf(authority);
    return name !== null && own.has(name);
  };
  return {
    refusedHost: (received) => (received !== undefined && accepts(received) ? null : (received ?? '(no Host header)')),
    refusedOrigin: (origin, secFetchSite) => {
      if (origin === undefined) return secFetchSite === 'cross-site' ? '(cross-site, no Origin)' : null;
      if (allowed.has(origin.toLowerCase())) return null;
      const match = /^https?:\/\/([^/]+)$/i.exec(origin);
      const host = match?.[1];
      return host !== undefined && accepts(host) ? null : origin;
    },
  };
}
