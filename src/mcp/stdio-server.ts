import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Logger } from 'pino';
import type { McpBackend } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import { ToolCallLimiter } from './call-limits.ts';
import { createMcpServer } from './server.ts';

/**
 * MCP over stdio for one client that launched the service itself. The principal is fixed at launch
 * (`serve --stdio --project NAME`): whoever may run that command on this machine acts as that project.
 * Logs stay on stderr; stdout carries only MCP messages.
 */
export async function startMcpStdio(options: { principal: Principal; backend: McpBackend; logger?: Logger; toolCallsPerMinute?: number }): Promise<{ close(): Promise<void> }> {
  const { toolCallsPerMinute, ...rest } = options;
  const session = createMcpServer({ ...rest, callLimiter: new ToolCallLimiter(toolCallsPerMinute ?? 0) });
  const transport = new StdioServerTransport();
  await session.server.connect(transport);
  options.logger?.info({ project: options.principal.project }, 'MCP on stdio');
  return {
    async close() {
      session.dispose();
      await session.server.close();
    },
  };
}
