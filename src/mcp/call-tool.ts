import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { TunnelManagerError, type ErrorShape } from '../errors.ts';

/** How long `call` waits for an answer unless --timeout says otherwise (the SDK's own default). */
export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * `tunnel-manager call TOOL key=value…`: one MCP tool call over Streamable HTTP, for operators and the README's
 * walkthrough. A value that parses as JSON (numbers, booleans, objects) is passed as such, anything else as a string.
 */
export function parseToolArguments(pairs: string[]): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const pair of pairs) {
    const index = pair.indexOf('=');
    if (index <= 0) {
      throw new TunnelManagerError({
        code: 'INPUT_INVALID',
        message: `The argument ${JSON.stringify(pair)} is not KEY=VALUE.`,
        fix: 'Write each tool argument as key=value, e.g. subdomain=app targetPort=3100.',
        details: { argument: pair },
      });
    }
    const key = pair.slice(0, index);
    const raw = pair.slice(index + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    args[key] = value;
  }
  return args;
}

/**
 * A value a Tunnel Manager server sent as its error shape: a code, a message and a fix (the code is passed on as the
 * server made it; `details` may be missing from an older server).
 */
function isShape(value: unknown): value is ErrorShape {
  if (typeof value !== 'object' || value === null) return false;
  return 'code' in value && typeof value.code === 'string' && 'message' in value && typeof value.message === 'string' && 'fix' in value && typeof value.fix === 'string';
}

/** The error shape a server put in its refusal (JSON-RPC `data`, or the JSON body of an HTTP error), as it made it. */
function serverShape(error: unknown): ErrorShape | null {
  if (error instanceof McpError && isShape(error.data)) return { ...error.data, details: error.data.details ?? {} };
  if (error instanceof StreamableHTTPError) {
    const body = /\{.*\}/s.exec(error.message)?.[0];
    try {
      const parsed: unknown = body === undefined ? null : JSON.parse(body);
      const inner: unknown = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? parsed.error : undefined;
      if (isShape(inner)) return { ...inner, details: inner.details ?? {} };
    } catch {
      // not our JSON: no shape to pass on
    }
  }
  return null;
}

/** Why the connection itself failed (ECONNREFUSED…), when it did. */
function connectionFailure(error: unknown): string | null {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  return typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string' ? cause.code : null;
}

/**
 * A failed call as the user must see it: the server's refusal as the server made it (code, message, fix); a service
 * that does not answer at the URL, or a call that outlived the client's timeout, with their own codes and fixes.
 * Anything else is thrown as it is (a real bug: INTERNAL).
 */
function callFailure(error: unknown, url: string, tool: string, timeoutMs: number): unknown {
  const shape = serverShape(error);
  if (shape !== null) return new TunnelManagerError({ ...shape, cause: error });
  if (error instanceof McpError && error.code === Number(ErrorCode.RequestTimeout)) {
    const seconds = Math.round(timeoutMs / 1000);
    return new TunnelManagerError({
      code: 'CALL_TIMED_OUT',
      message: `No answer to ${tool} within ${seconds} s (this command's own limit); the service may still be carrying it out.`,
      fix:
        `See whether it happened before calling again: \`tunnel-manager call tunnel_get_events\` (or tunnel_list_cnames for a route); ` +
        `then retry, with \`--timeout ${seconds * 2}\` to wait longer. \`tunnel-manager status\` shows whether the tunnel serves.`,
      details: { url, tool, timeoutSeconds: seconds },
      cause: error,
    });
  }
  const refused = connectionFailure(error);
  if (refused !== null) {
    return new TunnelManagerError({
      code: 'SERVICE_UNREACHABLE',
      message: `No tunnel-manager answers at ${url} (${refused}).`,
      fix: 'Start it (`tunnel-manager serve`, or systemctl start tunnel-manager), or point --url (or --data-dir, whose sandbox.json names the URL) at the one that runs.',
      details: { url, reason: refused },
      cause: error,
    });
  }
  return error;
}

/** Calls `tool` once; a refusal or failure is thrown as the user must see it (callFailure). */
export async function callTool(
  url: string,
  token: string,
  tool: string,
  args: Record<string, unknown>,
  options: { timeoutMs?: number } = {},
): Promise<{ isError: boolean; result: unknown }> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = new Client({ name: 'tunnel-manager-cli', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  try {
    await client.connect(transport, { timeout: timeoutMs });
  } catch (error) {
    throw callFailure(error, url, tool, timeoutMs);
  }
  try {
    const result = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: timeoutMs });
    return { isError: result.isError === true, result: result.structuredContent ?? result.content };
  } catch (error) {
    throw callFailure(error, url, tool, timeoutMs);
  } finally {
    await client.close();
  }
}
