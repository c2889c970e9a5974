import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { McpBackend } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import { toErrorShape } from '../errors.ts';
import type { EventRow } from '../store/events-repository.ts';
import { protocolError } from './answers.ts';
import { DENIAL_CODES, eventFor, type PolicyFacts } from './authorization.ts';
import { readResource, resourcesAffectedBy, resourceUrisFor, RESOURCE_TEMPLATES } from './resources.ts';

/** The spec's JSON-RPC code for a resource that does not exist. */
const RESOURCE_NOT_FOUND_RPC = -32002;

/** What a session's resource handlers share. */
export interface ResourceSession {
  server: Server;
  principal: Principal;
  backend: McpBackend;
  facts: PolicyFacts;
  logger?: Logger | undefined;
}

const RPC_CODE_OF: Readonly<Record<string, number>> = {
  INTERNAL: ErrorCode.InternalError,
  FORBIDDEN: ErrorCode.InvalidRequest,
  RESOURCE_NOT_FOUND: RESOURCE_NOT_FOUND_RPC,
};

/**
 * A refused or failed resource request: audited like a tool call, and answered as a JSON-RPC error whose
 * `data` is the error shape (a thrown TunnelManagerError alone would reach the client as a bare -32603).
 */
function resourceFailure(session: ResourceSession, action: string, uri: string, error: unknown): Error {
  const shape = toErrorShape(error);
  try {
    session.backend.recordAudit({
      ts: Date.now(),
      principal: session.principal.project,
      action,
      target: uri,
      arguments: { uri },
      outcome: DENIAL_CODES.has(shape.code) ? 'denied' : 'error',
      errorCode: shape.code,
      durationMs: null,
      details: shape.details,
    });
  } catch (auditError) {
    session.logger?.error({ err: auditError }, 'could not write the audit row');
  }
  return protocolError(RPC_CODE_OF[shape.code] ?? ErrorCode.InvalidParams, shape);
}

function readOrRefuse(session: ResourceSession, action: string, uri: string): unknown {
  try {
    return readResource(uri, session.principal, session.backend, session.facts);
  } catch (error) {
    throw resourceFailure(session, action, uri, error);
  }
}

/** resources/list, templates, read, subscribe and unsubscribe; answers the session's subscriptions. */
export function registerResources(session: ResourceSession): Set<string> {
  const { server, principal, backend, facts } = session;
  const subscriptions = new Set<string>();
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: resourceUrisFor(principal, backend, facts).map((uri) => ({ uri, name: uri, mimeType: 'application/json' })),
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: RESOURCE_TEMPLATES }));
  server.setRequestHandler(ReadResourceRequestSchema, async (request) => ({
    contents: [{ uri: request.params.uri, mimeType: 'application/json', text: JSON.stringify(readOrRefuse(session, 'resources/read', request.params.uri)) }],
  }));
  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    readOrRefuse(session, 'resources/subscribe', request.params.uri); // refuses what the principal may not read
    subscriptions.add(request.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });
  return subscriptions;
}

function levelOf(event: EventRow): 'error' | 'warning' | 'notice' {
  if (event.kind === 'tunnel.down') return event.data.manual === true ? 'warning' : 'error';
  return event.kind === 'tunnel.degraded' ? 'warning' : 'notice';
}

/** Tells the session of each event its principal may read: resource updates for its subscriptions, and a log message. */
export function forwardEvents(session: ResourceSession, subscriptions: ReadonlySet<string>): () => void {
  const { server, principal } = session;
  return session.backend.onEvent((row: EventRow) => {
    const event = eventFor(principal, row);
    if (event === null) return;
    for (const uri of resourcesAffectedBy(event)) {
      if (subscriptions.has(uri)) void server.sendResourceUpdated({ uri }).catch(() => undefined);
    }
    void server
      .sendLoggingMessage({ level: levelOf(event), logger: 'tunnel-manager', data: { id: event.id, kind: event.kind, project: event.project, ...event.data } })
      .catch(() => undefined);
  });
}
