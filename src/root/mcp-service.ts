import type { Config } from '../app/config/config.ts';
import { splitHostPort, startService, type Service, type ServiceOptions } from './composition-root.ts';
import { hashToken } from '../secrets/token.ts';
import { startMcpHttpServer, type McpHttpServer } from '../mcp/http-server.ts';
import { PrincipalDirectory } from '../mcp/principal.ts';
import { startMcpStdio } from '../mcp/stdio-server.ts';
import { ALL_TOOLS } from '../mcp/tools/index.ts';

const TOOL_NAMES = ALL_TOOLS.map((tool) => tool.name);

export interface McpServiceOptions extends Omit<ServiceOptions, 'frontEnd'> {
  /** MCP over HTTP at this HOST:PORT instead of config.mcp.listen (port 0: any free port). */
  mcpListen?: string;
  /** MCP over stdio for this project instead of HTTP. */
  stdioProject?: string;
  /** Overrides `mcp.sessionIdleMinutes` (tests use a short one). */
  mcpSessionIdleMs?: number;
}

export interface McpService extends Service {
  /** The Streamable HTTP server (null when the service speaks stdio). */
  mcp: McpHttpServer | null;
}

/**
 * The service with its MCP front end: what `tunnel-manager serve` runs. src/app composes everything below MCP and
 * takes the transports as its front end; the transports live here, above it.
 */
export async function startMcpService(config: Config, options: McpServiceOptions): Promise<McpService> {
  const { mcpListen, stdioProject, mcpSessionIdleMs, ...rest } = options;
  let http: McpHttpServer | null = null;
  const service = await startService(config, {
    ...rest,
    frontEnd: async ({ backend, logger, sandboxTokens }) => {
      const directory = new PrincipalDirectory(
        config.projects.map((project) => ({
          name: project.name,
          role: project.role,
          tokenHash: project.tokenHash ?? (sandboxTokens?.[project.name] ? hashToken(sandboxTokens[project.name]!) : undefined),
        })),
      );
      if (stdioProject) {
        const stdio = await startMcpStdio({
          principal: directory.byName(stdioProject),
          backend,
          logger,
          toolCallsPerMinute: config.limits.toolCallsPerMinute,
          shutdownGraceMs: config.mcp.shutdownGraceSeconds * 1000,
        });
        return { url: null, tools: TOOL_NAMES, close: () => stdio.close() };
      }
      const server = await startMcpHttpServer({
        ...splitHostPort(mcpListen ?? config.mcp.listen),
        directory,
        backend,
        logger,
        allowedOrigins: config.mcp.allowedOrigins,
        maxSessionsPerProject: config.mcp.maxSessionsPerProject,
        sessionIdleMs: mcpSessionIdleMs ?? config.mcp.sessionIdleMinutes * 60_000,
        toolCallsPerMinute: config.limits.toolCallsPerMinute,
        shutdownGraceMs: config.mcp.shutdownGraceSeconds * 1000,
      });
      http = server;
      return { url: server.url, tools: TOOL_NAMES, close: () => server.close() };
    },
  });
  return { ...service, mcp: http };
}
