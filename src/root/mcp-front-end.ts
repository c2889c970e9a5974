import type { Logger } from 'pino';
import type { Config } from '../app/config/config.ts';
import type { ManagerBackend } from '../app/use-cases/backend.ts';
import { splitHostPort } from '../host-port.ts';
import { startMcpHttpServer, type McpHttpServer } from '../mcp/http-server.ts';
import { PrincipalDirectory } from '../mcp/principal.ts';
import { startMcpStdio } from '../mcp/stdio-server.ts';
import { ALL_TOOLS } from '../mcp/tools/index.ts';
import { hashToken } from '../secrets/token.ts';
import type { TunnelManagerOptions } from './options.ts';

/** The names of the tools the front end serves (the metrics' `tool` label takes only these). */
export const TOOL_NAMES: readonly string[] = ALL_TOOLS.map((tool) => tool.name);

export interface McpFrontEnd {
  /** The Streamable HTTP server, or null when MCP is spoken over stdio. */
  http: McpHttpServer | null;
  close(): Promise<void>;
}

/** Each project's identity: its configured token hash, or in the sandbox the hash of its demo token. */
function principalsOf(config: Config, sandboxTokens: Record<string, string> | null): PrincipalDirectory {
  return new PrincipalDirectory(
    config.projects.map((project) => {
      const demoToken = sandboxTokens?.[project.name];
      return { name: project.name, role: project.role, tokenHash: project.tokenHash ?? (demoToken ? hashToken(demoToken) : undefined) };
    }),
  );
}

/**
 * The MCP transports over the backend: stdio for one project (`serve --stdio --project NAME`), else Streamable HTTP.
 * Started last by the composition root, once every call it lets in finds the backend ready.
 */
export async function startMcpFrontEnd(deps: {
  config: Config;
  options: TunnelManagerOptions;
  backend: ManagerBackend;
  logger: Logger;
  sandboxTokens: Record<string, string> | null;
}): Promise<McpFrontEnd> {
  const { config, options, backend, logger } = deps;
  const directory = principalsOf(config, deps.sandboxTokens);
  const limits = { toolCallsPerMinute: config.limits.toolCallsPerMinute, shutdownGraceMs: config.mcp.shutdownGraceSeconds * 1000 };
  if (options.stdioProject) {
    const stdio = await startMcpStdio({ principal: directory.byName(options.stdioProject), backend, logger, ...limits });
    return { http: null, close: () => stdio.close() };
  }
  const http = await startMcpHttpServer({
    ...splitHostPort(options.mcpListen ?? config.mcp.listen),
    directory,
    backend,
    logger,
    allowedOrigins: config.mcp.allowedOrigins,
    maxSessionsPerProject: config.mcp.maxSessionsPerProject,
    sessionIdleMs: options.mcpSessionIdleMs ?? config.mcp.sessionIdleMinutes * 60_000,
    ...limits,
  });
  return { http, close: () => http.close() };
}
