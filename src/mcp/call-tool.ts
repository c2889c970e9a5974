import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { TunnelManagerError } from '../errors.ts';

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

export async function callTool(url: string, token: string, tool: string, args: Record<string, unknown>): Promise<{ isError: boolean; result: unknown }> {
  const client = new Client({ name: 'tunnel-manager-cli', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  try {
    await client.connect(transport);
  } catch (error) {
    throw new TunnelManagerError({
      code: 'UNAUTHENTICATED',
      message: `Could not open an MCP session at ${url}: ${(error as Error).message}`,
      fix: 'Check that the service runs (tunnel-manager status) and that the token belongs to a configured project.',
      details: { url },
      cause: error,
    });
  }
  try {
    const result = await client.callTool({ name: tool, arguments: args });
    return { isError: result.isError === true, result: result.structuredContent ?? result.content };
  } finally {
    await client.close();
  }
}
