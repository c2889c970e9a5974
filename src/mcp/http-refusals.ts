import type { IncomingMessage } from 'node:http';
import type { ErrorShape } from '../errors.ts';
import { isLoopbackHost, type ListenerGuard } from '../listener-guard.ts';

/**
 * What the MCP HTTP listener refuses before a request reaches a session, in the one error shape. These are the
 * transport's own refusals, made before any identity exists (DNS rebinding, authentication) or about the request's
 * form; who may do what once the caller is known is the policy's (src/mcp/authorization.ts).
 */

/** Where the listener answers, for the fixes that name it. */
export interface ListenerAddress {
  host: string;
  hostInUrl: string;
  port: number;
  path: string;
}

/**
 * The spec's rule against DNS rebinding (src/listener-guard.ts): the Host must be a name of this listener (on
 * loopback: localhost, 127.0.0.1, [::1], any port), and an Origin, when there is one, too or one of
 * `mcp.allowedOrigins`; a browser's cross-site request without one is refused. Agents and the CLI send no Origin.
 * Answers the refusal to send and what to audit, or null.
 */
export function rebindingRefusal(req: IncomingMessage, guard: ListenerGuard, at: ListenerAddress): { shape: ErrorShape; audit: Record<string, string> } | null {
  const badHost = guard.refusedHost(req.headers.host);
  if (badHost !== null) {
    return {
      audit: { host: badHost.slice(0, 200) },
      shape: {
        code: 'FORBIDDEN',
        message: `The Host ${JSON.stringify(badHost.slice(0, 200))} is not a name of this MCP listener: it answers to its own address only (DNS rebinding protection).`,
        fix: `Connect to http://${at.hostInUrl}:${at.port}${at.path}${isLoopbackHost(at.host) ? ' (or localhost, 127.0.0.1 or [::1] on that port)' : ''}; a page reaching this listener under another name is refused.`,
        details: { host: badHost.slice(0, 200) },
      },
    };
  }
  const badOrigin = guard.refusedOrigin(req.headers.origin, req.headers['sec-fetch-site']);
  if (badOrigin === null) return null;
  return {
    audit: { origin: badOrigin.slice(0, 200) },
    shape: {
      code: 'FORBIDDEN',
      message: `Requests from the browser origin ${badOrigin.slice(0, 200)} are not allowed: the MCP endpoint refuses foreign origins (DNS rebinding protection).`,
      fix: `If a web page at that origin really should call Tunnel Manager, add it to \`mcp.allowedOrigins\` in the configuration (e.g. "https://dashboard.example.com") and restart; agents and the CLI send no Origin and need nothing, and pages on localhost, 127.0.0.1 or [::1] are allowed on a loopback listener.`,
      details: { origin: badOrigin.slice(0, 200) },
    },
  };
}

export function notServedHere(pathname: string, at: ListenerAddress): ErrorShape {
  return {
    code: 'INPUT_INVALID',
    message: `Nothing is served at ${pathname}.`,
    fix: `Point your MCP client at http://${at.host}:${at.port}${at.path}.`,
    details: {},
  };
}

/** No bearer token, or one that is no project's. */
export function unauthenticated(token: string | undefined): ErrorShape {
  return {
    code: 'UNAUTHENTICATED',
    message: token === undefined ? 'The request has no bearer token.' : 'The bearer token is not valid for any project.',
    fix: 'Send `Authorization: Bearer <token>` with the token the meta-supervisor gave your project (its hash is in the configuration).',
    details: {},
  };
}

export function unknownSession(sessionId: string): ErrorShape {
  return {
    code: 'INPUT_INVALID',
    message: `The MCP session ${sessionId} does not exist (it ended, or the service restarted).`,
    fix: 'Initialize a new session.',
    details: { sessionId },
  };
}

export const NOT_AN_INITIALIZE: ErrorShape = {
  code: 'INPUT_INVALID',
  message: 'A request without an Mcp-Session-Id header must be a POST of an initialize request.',
  fix: 'Initialize a session first; then send its Mcp-Session-Id header with every request.',
  details: {},
};

export const REQUEST_FAILED: ErrorShape = {
  code: 'INTERNAL',
  message: 'The MCP request failed unexpectedly.',
  fix: 'Retry; if it persists, check the service log.',
  details: {},
};
