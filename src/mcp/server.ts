import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { Protocol } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import { redact } from '../redact.ts';
import { TunnelManagerError, toErrorShape, type ErrorShape } from '../errors.ts';
import type { EventRow } from '../store/events-repository.ts';
import type { McpBackend, Progress } from '../contract/backend.ts';
import { runForProject } from '../request-context.ts';
import type { ToolCallLimiter } from './call-limits.ts';
import { CallsInFlight } from './calls-in-flight.ts';
import { authorize, authorizeTool, DENIAL_CODES, eventFor, mayCall, type PolicyFacts } from './authorization.ts';
import { jsonSchemaOf } from './json-schema.ts';
import type { Principal } from '../contract/principal.ts';
import { readResource, resourceUrisFor, resourcesAffectedBy, RESOURCE_TEMPLATES } from './resources.ts';
import type { AnyToolDefinition } from './tool-definition.ts';
import { ALL_TOOLS } from './tools/index.ts';

export const SERVER_INFO = { name: 'tunnel-manager', version: '0.1.0' };

/**
 * The error shape every tool may answer with (`isError: true`), as JSON Schema. Each tool's outputSchema carries it
 * (`anyOf: [result, error]`): the SDK's client validates an error's structured content against the tool's own
 * schema, compiled alone, so a `$ref` to one shared definition could not resolve there. It is defined once, here.
 */
const ERROR_SCHEMA = {
  type: 'object',
  description: 'An error: a stable code, what happened, what to do next, and details.',
  properties: {
    code: { type: 'string', description: 'stable error code, e.g. PORT_NOT_OWNED; handle failures by it' },
    message: { type: 'string', description: 'what happened, in plain words' },
    fix: { type: 'string', description: 'what to do next, often the exact call to make' },
    details: { type: 'object', additionalProperties: true, description: 'what makes the failure concrete: the field, the owner, the networks…' },
  },
  required: ['code', 'message', 'fix', 'details'],
  additionalProperties: false,
};

/** The tools/list answers, built once per tool set and role: the schemas never change while the process runs. */
const toolLists = new WeakMap<AnyToolDefinition[], Map<Principal['role'], ReturnType<typeof buildToolList>>>();

function buildToolList(tools: AnyToolDefinition[]) {
  return tools.map((tool) => ({
    name: tool.name,
    title: tool.title,
    description: tool.access === 'ms' ? `${tool.description} (meta-supervisor only)` : tool.description,
    inputSchema: jsonSchemaOf(tool.input) as { type: 'object' },
    outputSchema: { type: 'object' as const, anyOf: [jsonSchemaOf(tool.output), ERROR_SCHEMA] },
    annotations: tool.annotations,
  }));
}

/** What a role sees in tools/list: a project supervisor, only the tools it may call; the meta-supervisor, all. */
function toolListOf(tools: AnyToolDefinition[], role: Principal['role']): ReturnType<typeof buildToolList> {
  let byRole = toolLists.get(tools);
  if (!byRole) {
    byRole = new Map();
    toolLists.set(tools, byRole);
  }
  let list = byRole.get(role);
  if (!list) {
    list = buildToolList(tools.filter((tool) => mayCall(role, tool)));
    byRole.set(role, list);
  }
  return list;
}

/**
 * Names the fields of a zod failure, so the caller knows exactly what to change. An unknown argument (the schemas are
 * strict) is named itself, with the arguments the tool takes: "Correct `(arguments)`" told nobody what to change.
 */
function inputError(tool: AnyToolDefinition, error: z.ZodError, args: unknown): TunnelManagerError {
  const problems = error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: [...issue.path, key].join('.'), problem: 'not an argument of this tool', unknown: true }))
      : [{ field: issue.path.join('.') || '(arguments)', problem: issue.message, unknown: false }],
  );
  const unknown = problems.filter((p) => p.unknown).map((p) => `\`${p.field}\``);
  const wrong = problems.filter((p) => !p.unknown).map((p) => `\`${p.field}\``);
  const accepted = Object.keys(tool.input instanceof z.ZodObject ? (tool.input.shape as object) : {});
  const steps = [
    ...(wrong.length > 0 ? [`correct ${wrong.join(', ')}`] : []),
    ...(unknown.length > 0 ? [`remove ${unknown.join(', ')} (${tool.name} takes ${accepted.length > 0 ? accepted.map((a) => `\`${a}\``).join(', ') : 'no arguments'})`] : []),
  ];
  const fix = `${steps.join(' and ')} and call ${tool.name} again; tools/list shows every argument with its form.`;
  return new TunnelManagerError({
    code: 'INPUT_INVALID',
    message: `Invalid arguments for ${tool.name}: ${problems.map((p) => `${p.field}: ${p.problem}`).join('; ')}.`,
    fix: fix[0]!.toUpperCase() + fix.slice(1),
    details: { problems: problems.map(({ field, problem }) => ({ field, problem })), received: typeof args === 'object' && args !== null ? Object.keys(args) : typeof args },
  });
}

/** The spec's JSON-RPC code for a resource that does not exist. */
const RESOURCE_NOT_FOUND_RPC = -32002;

function errorResult(shape: ErrorShape): CallToolResult {
  return {
    isError: true,
    content: [{ type: 'text', text: `${shape.code}: ${shape.message}\nfix: ${shape.fix}` }],
    structuredContent: { ...shape },
  };
}

/**
 * `tools/call` as it arrives, with `arguments` left as sent. The SDK's own schema checks `arguments` before any handler
 * runs: a non-object answered -32603 with raw zod text, `{"constructor": null}` crashed its record check, and a
 * `__proto__` key became the prototype of the copy it made. With this schema every call reaches our handler, which
 * refuses what is not an object of plain keys, with -32602 and a readable message, and audits it.
 */
const RawCallToolRequestSchema = z
  .object({
    method: z.literal('tools/call'),
    params: z.object({ name: z.string(), arguments: z.unknown().optional() }).passthrough(),
  })
  .passthrough();

/** Keys that would reach an object's prototype rather than be an argument. */
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'];

/** Why `args` is not an arguments object, or null when it is one. */
function notAnArgumentsObject(args: unknown): string | null {
  if (args === undefined) return null;
  if (args === null) return 'null';
  if (Array.isArray(args)) return 'an array';
  if (typeof args !== 'object') return `a ${typeof args}`;
  return null;
}

/**
 * A JSON-RPC error whose `data` is the error shape. Not an McpError: its message would carry the "MCP error N:"
 * prefix twice once the client wraps it again.
 */
function protocolError(code: number, shape: ErrorShape): Error {
  return Object.assign(new Error(`${shape.code}: ${shape.message} fix: ${shape.fix}`), { code, data: shape });
}

/**
 * When the caller sent `_meta.progressToken`, a reporter that sends one `notifications/progress` per step (progress
 * counts the steps; the total is not known in advance); otherwise none, and nothing is sent.
 */
function progressReporter(
  meta: unknown,
  send: (notification: { method: 'notifications/progress'; params: { progressToken: string | number; progress: number; message: string } }) => Promise<void>,
): Progress | undefined {
  const token = typeof meta === 'object' && meta !== null ? (meta as { progressToken?: unknown }).progressToken : undefined;
  if (typeof token !== 'string' && typeof token !== 'number') return undefined;
  let steps = 0;
  return (message) => {
    steps += 1;
    void send({ method: 'notifications/progress', params: { progressToken: token, progress: steps, message } }).catch(() => undefined);
  };
}

function withoutSecrets(args: unknown, secretNames: string[] = []): Record<string, unknown> {
  if (typeof args !== 'object' || args === null) return {};
  const copy = { ...(args as Record<string, unknown>) };
  for (const name of secretNames) if (name in copy) copy[name] = '[REDACTED]';
  return redact(copy);
}

export interface McpServerOptions {
  principal: Principal;
  backend: McpBackend;
  logger?: Logger;
  tools?: AnyToolDefinition[];
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

/**
 * One MCP server per session, for one principal. Tools validate their own arguments (so a bad argument gets
 * the one error shape, naming the field), check access by role, and every call, allowed or denied, is audited.
 */
export function createMcpServer(options: McpServerOptions): McpSession {
  const { principal, backend, logger } = options;
  const inFlight = options.inFlight ?? new CallsInFlight();
  const tools = options.tools ?? ALL_TOOLS;
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  const subscriptions = new Set<string>();
  const policyFacts: PolicyFacts = {
    routeOwner: (hostname) => backend.findRoute(hostname)?.project,
    assertPortOwned: (project, port) => {
      backend.ports.assertOwned(project, port);
    },
  };

  const server = new Server(SERVER_INFO, {
    jsonSchemaValidator: NO_ELICITATION,
    capabilities: {
      tools: {},
      resources: { subscribe: true },
      logging: {},
    },
    instructions:
      'Tunnel Manager publishes your services on the Cloudflare Tunnel of this machine. Allocate a port (port_allocate), run your service on it, ' +
      'then tunnel_request_cname { subdomain, targetPort }. Every error has a code, a message and a fix to follow.',
  });

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: toolListOf(tools, principal.role) }));

  // Registered on the protocol layer, past the Server's tools/call wrapper (see RawCallToolRequestSchema).
  Protocol.prototype.setRequestHandler.call(server, RawCallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const started = performance.now();
    const { name, arguments: args } = request.params;
    const tool = byName.get(name);
    const audit = (outcome: 'ok' | 'denied' | 'error', errorCode: string | null, target: string | null, details: Record<string, unknown> = {}) => {
      try {
        backend.recordAudit({
          ts: Date.now(),
          principal: principal.project,
          action: name,
          target,
          arguments: withoutSecrets(args, tool?.secretArguments),
          outcome,
          errorCode,
          durationMs: Math.round((performance.now() - started) * 100) / 100,
          details,
        });
      } catch (error) {
        logger?.error({ err: error }, 'could not write the audit row');
      }
    };
    try {
      options.callLimiter?.admit(principal.project);
    } catch (error) {
      // A flood is refused at no cost: one audit row for a run of refusals, not one per call.
      const shape = toErrorShape(error);
      if (shape.details.firstRefusal === true) audit('denied', shape.code, null, shape.details);
      return errorResult(shape);
    }
    if (!tool) {
      // The spec: an unknown tool is a protocol error (invalid params), not a tool result.
      const shape: ErrorShape = {
        code: 'INPUT_INVALID',
        message: `There is no tool named ${name}.`,
        fix: `Call tools/list for the tools you may call; they are named ${toolListOf(tools, principal.role).map((t) => t.name).join(', ')}.`,
        details: { tool: name },
      };
      audit('error', shape.code, null);
      throw protocolError(ErrorCode.InvalidParams, shape);
    }
    try {
      authorizeTool(principal, tool);
    } catch (error) {
      const shape = toErrorShape(error);
      audit('denied', shape.code, null);
      return errorResult(shape);
    }
    const notObject = notAnArgumentsObject(args);
    if (notObject !== null) {
      const shape: ErrorShape = {
        code: 'INPUT_INVALID',
        message: `The arguments of ${name} must be a JSON object of named arguments; they were ${notObject}.`,
        fix: `Send "arguments": { ... } with the names tools/list shows for ${name}, or {} when it takes none.`,
        details: { tool: name, received: notObject },
      };
      audit('error', shape.code, null, { received: notObject });
      throw protocolError(ErrorCode.InvalidParams, shape);
    }
    const prototypeKey = args === undefined ? undefined : PROTOTYPE_KEYS.find((key) => Object.hasOwn(args as object, key));
    if (prototypeKey !== undefined) {
      const error = new TunnelManagerError({
        code: 'INPUT_INVALID',
        message: `Invalid arguments for ${name}: ${prototypeKey}: not an argument of this tool.`,
        fix: `Remove \`${prototypeKey}\` and call ${name} again; tools/list shows every argument with its form.`,
        details: { problems: [{ field: prototypeKey, problem: 'not an argument of this tool' }], tool: name },
      });
      audit('error', error.code, null);
      return errorResult(error.toJSON());
    }
    const parsed = tool.input.safeParse(args ?? {});
    if (!parsed.success) {
      const error = inputError(tool, parsed.error, args);
      audit('error', error.code, null);
      return errorResult(error.toJSON());
    }
    const target = tool.auditTarget?.(parsed.data) ?? null;
    const progress = progressReporter(request.params._meta, (notification) => extra.sendNotification(notification));
    try {
      const grant = authorize(principal, tool.resource?.(parsed.data) ?? { kind: 'shared' }, policyFacts);
      // The work is for the caller's project: its Cloudflare requests count against that project's share. A stop that
      // cannot wait for it answers it SHUTTING_DOWN (calls-in-flight.ts).
      const outcome = await inFlight.run(async () =>
        tool.output.parse(
          await runForProject(principal.project, () =>
            tool.handler(parsed.data, { principal, project: grant.project, backend, signal: extra.signal, ...(progress ? { progress } : {}) }),
          ),
        ) as Record<string, unknown>,
      );
      if ('interrupted' in outcome) {
        audit('error', outcome.interrupted.code, target, outcome.interrupted.details);
        return errorResult(outcome.interrupted);
      }
      audit('ok', null, target);
      return { content: [{ type: 'text', text: JSON.stringify(outcome.value) }], structuredContent: outcome.value };
    } catch (error) {
      const shape = toErrorShape(error);
      if (shape.code === 'INTERNAL') logger?.error({ err: error, tool: name }, 'tool failed unexpectedly');
      audit(DENIAL_CODES.has(shape.code) ? 'denied' : 'error', shape.code, target, shape.details);
      return errorResult(shape);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: resourceUrisFor(principal, backend, policyFacts).map((uri) => ({ uri, name: uri, mimeType: 'application/json' })),
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: RESOURCE_TEMPLATES }));
  /**
   * A refused or failed resource request: audited like a tool call, and answered as a JSON-RPC error whose
   * `data` is the error shape (a thrown TunnelManagerError alone would reach the client as a bare -32603).
   */
  const resourceFailure = (action: string, uri: string, error: unknown): Error => {
    const shape = toErrorShape(error);
    try {
      backend.recordAudit({
        ts: Date.now(),
        principal: principal.project,
        action,
        target: uri,
        arguments: { uri },
        outcome: DENIAL_CODES.has(shape.code) ? 'denied' : 'error',
        errorCode: shape.code,
        durationMs: null,
        details: shape.details,
      });
    } catch (auditError) {
      logger?.error({ err: auditError }, 'could not write the audit row');
    }
    const rpcCode =
      shape.code === 'INTERNAL'
        ? ErrorCode.InternalError
        : shape.code === 'FORBIDDEN'
          ? ErrorCode.InvalidRequest
          : shape.code === 'RESOURCE_NOT_FOUND'
            ? RESOURCE_NOT_FOUND_RPC
            : ErrorCode.InvalidParams;
    return protocolError(rpcCode, shape);
  };
  const readOrRefuse = (action: string, uri: string): unknown => {
    try {
      return readResource(uri, principal, backend, policyFacts);
    } catch (error) {
      throw resourceFailure(action, uri, error);
    }
  };

  server.setRequestHandler(ReadResourceRequestSchema, async (request) => ({
    contents: [{ uri: request.params.uri, mimeType: 'application/json', text: JSON.stringify(readOrRefuse('resources/read', request.params.uri)) }],
  }));
  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    readOrRefuse('resources/subscribe', request.params.uri); // refuses what the principal may not read
    subscriptions.add(request.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });

  const onEvent = (row: EventRow) => {
    const event = eventFor(principal, row);
    if (event === null) return;
    for (const uri of resourcesAffectedBy(event)) {
      if (subscriptions.has(uri)) void server.sendResourceUpdated({ uri }).catch(() => undefined);
    }
    const level = event.kind === 'tunnel.down' ? (event.data.manual === true ? 'warning' : 'error') : event.kind === 'tunnel.degraded' ? 'warning' : 'notice';
    void server
      .sendLoggingMessage({ level, logger: 'tunnel-manager', data: { id: event.id, kind: event.kind, project: event.project, ...event.data } })
      .catch(() => undefined);
  };
  const unsubscribe = backend.onEvent(onEvent);

  return {
    server,
    dispose: () => {
      unsubscribe();
      subscriptions.clear();
    },
  };
}
