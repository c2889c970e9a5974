import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { ErrorCode, type CallToolResult, type ServerNotification, type ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { McpBackend, Progress } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import { toErrorShape, type ErrorShape } from '../errors.ts';
import { redact } from '../redact.ts';
import { runForProject } from '../request-context.ts';
import { errorResult, protocolError } from './answers.ts';
import { authorize, authorizeTool, DENIAL_CODES, eventFor, type PolicyFacts } from './authorization.ts';
import type { ToolCallLimiter } from './call-limits.ts';
import type { CallsInFlight } from './calls-in-flight.ts';
import { inputError, notAnObjectError, prototypeKeyError } from './tool-arguments.ts';
import type { PreparedCall, Tool } from './tool-definition.ts';
import { toolListOf } from './tool-list.ts';

/**
 * `tools/call` as it arrives, with `arguments` left as sent (moved to `sent`). The SDK's Server checks a tools/call
 * request against its own schema after ours has parsed it (Server.setRequestHandler), and that check reads
 * `arguments` as a record: a non-object would be refused there with zod's own text, before any handler runs and
 * unaudited, and a `{"constructor": null}` once crashed it. With `arguments` moved aside, every call reaches the
 * wrapper below, which refuses what is not an object of plain keys, with -32602 and a readable message, and audits it.
 */
export const ToolCallRequestSchema = z
  .object({
    method: z.literal('tools/call'),
    params: z
      .object({ name: z.string(), arguments: z.unknown().optional(), _meta: z.unknown().optional() })
      .passthrough()
      .transform(({ arguments: sent, ...params }) => ({ ...params, sent })),
  })
  .passthrough();

type ToolCallRequest = z.output<typeof ToolCallRequestSchema>;
type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** What every call of a session shares. */
export interface CallSession {
  principal: Principal;
  backend: McpBackend;
  tools: readonly Tool[];
  byName: ReadonlyMap<string, Tool>;
  facts: PolicyFacts;
  inFlight: CallsInFlight;
  callLimiter?: ToolCallLimiter | undefined;
  logger?: Logger | undefined;
}

/** A call let through with its prepared work, or the answer that refuses it. */
type Admission = { admitted: { tool: Tool; call: PreparedCall } } | { refused: CallToolResult };

type Audit = (outcome: 'ok' | 'denied' | 'error', errorCode: string | null, target: string | null, details?: Record<string, unknown>) => void;

function withoutSecrets(args: unknown, secretNames: readonly string[]): Record<string, unknown> {
  if (typeof args !== 'object' || args === null) return {};
  const copy: Record<string, unknown> = { ...args };
  for (const name of secretNames) if (name in copy) copy[name] = '[REDACTED]';
  return redact(copy);
}

/** One audit row per call, allowed or not; a row that cannot be written is logged, never a failed call. */
function auditorFor(session: CallSession, name: string, args: unknown, tool: Tool | undefined): Audit {
  const started = performance.now();
  return (outcome, errorCode, target, details = {}) => {
    try {
      session.backend.recordAudit({
        ts: Date.now(),
        principal: session.principal.project,
        action: name,
        target,
        arguments: withoutSecrets(args, tool?.secretArguments ?? []),
        outcome,
        errorCode,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        details,
      });
    } catch (error) {
      session.logger?.error({ err: error }, 'could not write the audit row');
    }
  };
}

/**
 * When the caller sent `_meta.progressToken`, a reporter that sends one `notifications/progress` per step (progress
 * counts the steps; the total is not known in advance); otherwise none, and nothing is sent.
 */
function progressReporter(meta: unknown, extra: Extra): Progress | undefined {
  const token: unknown = typeof meta === 'object' && meta !== null && 'progressToken' in meta ? meta.progressToken : undefined;
  if (typeof token !== 'string' && typeof token !== 'number') return undefined;
  let steps = 0;
  return (message) => {
    steps += 1;
    void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: steps, message } }).catch(() => undefined);
  };
}

/** The spec: an unknown tool is a protocol error (invalid params), not a tool result. */
function unknownTool(session: CallSession, name: string): ErrorShape {
  return {
    code: 'INPUT_INVALID',
    message: `There is no tool named ${name}.`,
    fix: `Call tools/list for the tools you may call; they are named ${toolListOf(session.tools, session.principal.role).map((t) => t.name).join(', ')}.`,
    details: { tool: name },
  };
}

/**
 * The checks before a tool's arguments are used, in order: the caller's call limit, the tool exists, the caller may
 * call it at all (before its arguments are read), the arguments are an object of plain keys that the tool's schema
 * accepts. Answers the prepared call, or the refusal to answer (a result), or throws a protocol error.
 */
function admit(session: CallSession, name: string, sent: unknown, audit: Audit): Admission {
  try {
    session.callLimiter?.admit(session.principal.project);
  } catch (error) {
    // A flood is refused at no cost: one audit row for a run of refusals, not one per call.
    const shape = toErrorShape(error);
    if (shape.details.firstRefusal === true) audit('denied', shape.code, null, shape.details);
    return { refused: errorResult(shape) };
  }
  const tool = session.byName.get(name);
  if (!tool) {
    const shape = unknownTool(session, name);
    audit('error', shape.code, null);
    throw protocolError(ErrorCode.InvalidParams, shape);
  }
  return admitArguments(session, tool, sent, audit);
}

function admitArguments(session: CallSession, tool: Tool, sent: unknown, audit: Audit): Admission {
  try {
    authorizeTool(session.principal, tool);
  } catch (error) {
    const shape = toErrorShape(error);
    audit('denied', shape.code, null);
    return { refused: errorResult(shape) };
  }
  const notObject = notAnObjectError(tool.name, sent);
  if (notObject !== null) {
    audit('error', notObject.code, null, { received: notObject.details.received });
    throw protocolError(ErrorCode.InvalidParams, notObject);
  }
  const prototypeKey = prototypeKeyError(tool.name, sent);
  if (prototypeKey !== null) {
    audit('error', prototypeKey.code, null);
    return { refused: errorResult(prototypeKey.toJSON()) };
  }
  const call = tool.prepare(sent ?? {});
  if ('rejected' in call) {
    const error = inputError(tool, call.rejected, sent);
    audit('error', error.code, null);
    return { refused: errorResult(error.toJSON()) };
  }
  return { admitted: { tool, call } };
}

/**
 * Decides the call on the resource its arguments name (the policy), then runs it for the caller's project (its
 * Cloudflare requests count against that project's share). A stop that cannot wait for it answers it SHUTTING_DOWN
 * (calls-in-flight.ts). Every outcome is audited with the call's target.
 */
async function perform(session: CallSession, request: ToolCallRequest, extra: Extra, admitted: { tool: Tool; call: PreparedCall }, audit: Audit): Promise<CallToolResult> {
  const { principal, backend } = session;
  const { tool, call } = admitted;
  const progress = progressReporter(request.params._meta, extra);
  try {
    const grant = authorize(principal, call.resource, session.facts);
    const context = { ...grant, backend, seeEvent: (row: Parameters<typeof eventFor>[1]) => eventFor(principal, row), signal: extra.signal, ...(progress ? { progress } : {}) };
    const outcome = await session.inFlight.run(() => runForProject(principal.project, () => call.run(context)));
    if ('interrupted' in outcome) {
      audit('error', outcome.interrupted.code, call.target, outcome.interrupted.details);
      return errorResult(outcome.interrupted);
    }
    audit('ok', null, call.target);
    return { content: [{ type: 'text', text: JSON.stringify(outcome.value) }], structuredContent: outcome.value };
  } catch (error) {
    const shape = toErrorShape(error);
    if (shape.code === 'INTERNAL') session.logger?.error({ err: error, tool: tool.name }, 'tool failed unexpectedly');
    audit(DENIAL_CODES.has(shape.code) ? 'denied' : 'error', shape.code, call.target, shape.details);
    return errorResult(shape);
  }
}

/**
 * The one wrapper every tool call passes through: limit, authorization (before the arguments are read, then on the
 * resource they name), argument checks, the call itself, and one audit row whatever happens.
 */
export async function handleToolCall(session: CallSession, request: ToolCallRequest, extra: Extra): Promise<CallToolResult> {
  const { name, sent } = request.params;
  const audit = auditorFor(session, name, sent, session.byName.get(name));
  const admission = admit(session, name, sent, audit);
  if ('refused' in admission) return admission.refused;
  return perform(session, request, extra, admission.admitted, audit);
}
