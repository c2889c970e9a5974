import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Logger } from 'pino';
import type { McpBackend } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import { ToolCallLimiter } from './call-limits.ts';
import { CallsInFlight, shuttingDown } from './calls-in-flight.ts';
import { createMcpServer } from './server.ts';

/**
 * MCP over stdio for one client that launched the service itself. The principal is fixed at launch
 * (`serve --stdio --project NAME`): whoever may run that command on this machine acts as that project.
 * Logs stay on stderr; stdout carries only MCP messages.
 */
export async function startMcpStdio(options: {
  principal: Principal;
  backend: McpBackend;
  logger?: Logger;
  toolCallsPerMinute?: number;
  /** How long a stop waits for the calls running before it answers them SHUTTING_DOWN; default 5 s. */
  shutdownGraceMs?: number;
}): Promise<{ close(): Promise<void> }> {
  const { toolCallsPerMinute, shutdownGraceMs = 5000, ...rest } = options;
  const inFlight = new CallsInFlight();
  const session = createMcpServer({ ...rest, inFlight, callLimiter: new ToolCallLimiter(toolCallsPerMinute ?? 0) });
  const transport = new StdioServerTransport();
  await session.server.connect(transport);
  options.logger?.info({ project: options.principal.project }, 'MCP on stdio');
  return {
    async close() {
      // As over HTTP: the calls running get the grace, then an answer; the answers are written before stdout closes.
      if ((await inFlight.settle(shutdownGraceMs)) > 0) inFlight.interruptAll(shuttingDown(shutdownGraceMs, 'call'));
      await new Promise<void>((resolve) => setImmediate(resolve));
      session.dispose();
      await session.server.close();
    },
  };
}
