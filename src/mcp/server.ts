import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { McpBackend } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import { policyFacts } from './authorization.ts';
import type { ToolCallLimiter } from './call-limits.ts';
import { CallsInFlight } from './calls-in-flight.ts';
import { forwardEvents, registerResources } from './resource-handlers.ts';
import { handleToolCall, ToolCallRequestSchema, type CallSession } from './tool-call.ts';
import type { Tool } from './tool-definition.ts';
import { toolListOf } from './tool-list.ts';
import { ALL_TOOLS } from './tools/index.ts';

export const SERVER_INFO = { name: 'tunnel-manager', version: '0.1.0' };

export interface McpServerOptions {
  principal: Principal;
  backend: McpBackend;
  logger?: Logger;
  tools?: readonly Tool[];
  /** Tool calls per project per minute, shared by all sessions of the server; none: no limit. */
  callLimiter?: ToolCallLimiter;
  /** The calls running now, shared by all sessions of the server (a stop answers them); default: this session's own. */
  inFlight?: CallsInFlight;
}

export interface McpSession {
  server: Server;
  /** Stops listening to events; call when the session ends. */
  dispose(): void;
}

/**
 * The SDK builds an Ajv instance per server (per session, here) to check answers to `elicitation/create`, at about
 * 1 MB each (ADR 0004). Tunnel Manager never elicits input from a client, so nothing is ever validated that way:
 * this validator only refuses, which keeps Ajv out of the service.
 */
const NO_ELICITATION: jsonSchemaValidator = {
  getValidator: () => () => ({ valid: false, data: undefined, errorMessage: 'Tunnel Manager does not ask clients for input (no elicitation).' }),
};

const INSTRUCTIONS =
  'Tunnel Manager publishes your services on the Cloudflare Tunnel of this machine. Allocate a port (port_allocate), run your service on it, ' +
  'then tunnel_request_cname { subdomain, targetPort }. Every error has a code, a message and a fix to follow.';

/**
 * One MCP server per session, for one principal, on the SDK's public `Server` API. Every tool call passes through one
 * wrapper (tool-call.ts): call limit, authorization, argument checks, the handler, one audit row.
 */
export function createMcpServer(options: McpServerOptions): McpSession {
  const { principal, backend, logger } = options;
  const tools = options.tools ?? ALL_TOOLS;
  const facts = policyFacts(backend);
  const server = new Server(SERVER_INFO, {
    jsonSchemaValidator: NO_ELICITATION,
    capabilities: { tools: {}, resources: { subscribe: true }, logging: {} },
    instructions: INSTRUCTIONS,
  });
  const calls: CallSession = {
    principal,
    backend,
    tools,
    byName: new Map(tools.map((tool) => [tool.name, tool])),
    facts,
    inFlight: options.inFlight ?? new CallsInFlight(),
    callLimiter: options.callLimiter,
    logger,
  };
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: toolListOf(tools, principal.role) }));
  server.setRequestHandler(ToolCallRequestSchema, async (request, extra) => handleToolCall(calls, request, extra));
  const resources = { server, principal, backend, facts, logger };
  const subscriptions = registerResources(resources);
  const unsubscribe = forwardEvents(resources, subscriptions);
  return {
    server,
    dispose: () => {
      unsubscribe();
      subscriptions.clear();
    },
  };
}
