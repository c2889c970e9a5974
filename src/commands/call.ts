import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../app/config/config.ts';
import { TunnelManagerError } from '../errors.ts';
import { isJsonObject } from '../json-guards.ts';
import { callTool, parseToolArguments } from '../mcp/call-tool.ts';
import { configFrom } from './config-option.ts';
import { EXIT, print, UsageError, type Command, type Options } from './options.ts';

/** What `call` reads from the sandbox's sandbox.json: the MCP URL and each project's demo token. */
interface SandboxHints {
  mcpUrl?: string;
  tokens?: Record<string, string>;
}


function sandboxHints(file: string): SandboxHints {
  if (!existsSync(file)) return {};
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!isJsonObject(parsed)) return {};
  const tokens = isJsonObject(parsed.tokens)
    ? Object.fromEntries(Object.entries(parsed.tokens).filter((entry): entry is [string, string] => typeof entry[1] === 'string'))
    : undefined;
  return { ...(typeof parsed.mcpUrl === 'string' ? { mcpUrl: parsed.mcpUrl } : {}), ...(tokens ? { tokens } : {}) };
}

/** The bearer token: --token, else $TUNNEL_MANAGER_TOKEN, else (sandbox) the project's demo token. */
function bearerFor(project: string, options: Options, sandbox: SandboxHints, sandboxFile: string): string {
  const bearer = options.token ?? process.env.TUNNEL_MANAGER_TOKEN ?? sandbox.tokens?.[project];
  if (bearer) return bearer;
  throw new TunnelManagerError({
    code: 'UNAUTHENTICATED',
    message: `No token for ${project}: not given with --token or $TUNNEL_MANAGER_TOKEN, and not in ${sandboxFile}.`,
    fix: "Pass --token with the project's MCP token (or set TUNNEL_MANAGER_TOKEN).",
    details: { project },
  });
}

function timeoutMsOf(options: Options): { timeoutMs?: number } {
  if (options.timeout === undefined) return {};
  const seconds = Number(options.timeout);
  if (!(Number.isFinite(seconds) && seconds > 0)) throw new UsageError('--timeout must be a number of seconds above 0');
  return { timeoutMs: seconds * 1000 };
}

function endpointOf(config: Config, options: Options): { url: string; bearer: string } {
  const sandboxFile = join(config.dataDir, 'sandbox.json');
  const sandbox = sandboxHints(sandboxFile);
  const url = options.url ?? sandbox.mcpUrl ?? `http://${config.mcp.listen}/mcp`;
  return { url, bearer: bearerFor(options.as ?? 'meta-supervisor', options, sandbox, sandboxFile) };
}

/** `tunnel-manager call TOOL [key=value ...]`: calls one MCP tool and prints its result (exit 1 when it is an error). */
export const call: Command = async ([tool, ...pairs], options) => {
  if (!tool) throw new UsageError('usage: tunnel-manager call TOOL [key=value ...] [--as PROJECT | --token T] [--url URL] [--timeout SECONDS]');
  const { url, bearer } = endpointOf(configFrom(options), options);
  const timeout = timeoutMsOf(options);
  const outcome = await callTool(url, bearer, tool, parseToolArguments(pairs), timeout);
  const text = JSON.stringify(outcome.result, null, 2);
  if (outcome.isError) {
    process.stderr.write(`${text}\n`);
    return EXIT.failed;
  }
  print(text);
  return EXIT.ok;
};
