import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, sandboxFileOf, startCli, type CliResult } from '../helpers/cli.ts';

/**
 * What the user of the command sees when something goes wrong, the command run as a real process: the server's
 * refusal as the server made it, the machine's problems (an address in use, a file this user may not touch, a file
 * that is not there, a service that does not answer, a call that outlives the command's timeout) each with its own
 * code and fix. INTERNAL ("a bug in tunnel-manager") is for bugs, and none of these is one (issue 27, item 5).
 */

let dir: string;
let serve: ReturnType<typeof startCli>;
let sandbox: { mcpUrl: string; edgeUrl: string; tokens: Record<string, string>; pid: number };
let dataDir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tm-cli-errors-'));
  dataDir = join(dir, 'serving');
  serve = startCli(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
  sandbox = await sandboxFileOf(serve, dataDir);
}, 90_000);

afterAll(async () => {
  if (serve?.child.exitCode === null) {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** The error the command printed: its code, and the whole text for the rest. */
function printedError(result: CliResult): { code: string; text: string } {
  const code = /^error ([A-Z_]+):/m.exec(result.stderr)?.[1] ?? '(none)';
  return { code, text: result.stderr };
}

function expectOwnError(result: CliResult, code: string): string {
  const shown = `exit ${result.code}\n${result.stderr.slice(-2000)}`;
  expect(result.code, shown).toBe(1);
  expect(printedError(result).code, shown).toBe(code);
  expect(result.stderr, shown).not.toContain('INTERNAL');
  expect(result.stderr, shown).not.toContain('This is a bug');
  expect(result.stderr, shown).toMatch(/^fix: \S/m);
  return result.stderr;
}

const hostPort = (url: string): string => new URL(url).host;

describe('the command reports what went wrong with its own code and fix', () => {
  it('an unknown tool: the server\'s INPUT_INVALID, with the tools there are', async () => {
    const text = expectOwnError(await runCli(['call', 'tunnel_nope', '--data-dir', dataDir, '--as', 'consilio']), 'INPUT_INVALID');
    expect(text).toContain('There is no tool named tunnel_nope.');
    expect(text).toContain('tunnel_request_cname');
  });

  it('a refused token: the server\'s UNAUTHENTICATED as it said it', async () => {
    const text = expectOwnError(await runCli(['call', 'tunnel_get_status', '--url', sandbox.mcpUrl, '--token', 'not-a-token']), 'UNAUTHENTICATED');
    expect(text).toContain('The bearer token is not valid for any project.');
  });

  it('a tool\'s refusal reaches the user as the server made it (code, message, fix)', async () => {
    const result = await runCli(['call', 'port_release', 'port=1', '--data-dir', dataDir, '--as', 'consilio']);
    expect(result.code).toBe(1);
    const refusal = JSON.parse(result.stderr) as { code: string; message: string; fix: string };
    expect(refusal.code).toBe('PORT_NOT_OWNED');
    expect(refusal.fix.length).toBeGreaterThan(0);
  });

  it('serve on an MCP address in use: ADDRESS_IN_USE naming --listen, and 127.0.0.1:0', async () => {
    const text = expectOwnError(
      await runCli(['serve', '--data-dir', join(dir, 'second-mcp'), '--listen', hostPort(sandbox.mcpUrl), '--edge-listen', '127.0.0.1:0']),
      'ADDRESS_IN_USE',
    );
    expect(text).toContain(`Cannot serve MCP on ${hostPort(sandbox.mcpUrl)}`);
    expect(text).toContain('--listen 127.0.0.1:0 --edge-listen 127.0.0.1:0');
  }, 60_000);

  it('serve on an edge address in use: ADDRESS_IN_USE naming --edge-listen', async () => {
    const text = expectOwnError(
      await runCli(['serve', '--data-dir', join(dir, 'second-edge'), '--listen', '127.0.0.1:0', '--edge-listen', hostPort(sandbox.edgeUrl)]),
      'ADDRESS_IN_USE',
    );
    expect(text).toContain(`Cannot start the sandbox's edge on ${hostPort(sandbox.edgeUrl)}`);
    expect(text).toContain('--edge-listen HOST:PORT');
  }, 60_000);

  it('no service at the URL: SERVICE_UNREACHABLE', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const text = expectOwnError(await runCli(['call', 'tunnel_get_status', '--url', `http://127.0.0.1:${port}/mcp`, '--token', 'x']), 'SERVICE_UNREACHABLE');
    expect(text).toContain('ECONNREFUSED');
  });

  it("the command's own timeout: CALL_TIMED_OUT, saying the call may still be carried out and how to wait longer", async () => {
    // An MCP server whose one tool never answers (the command under test is the client; this stands in for a slow call).
    let server: Server | undefined;
    try {
      server = createServer((request, response) => {
        const mcp = new McpServer({ name: 'slow', version: '1.0.0' });
        mcp.tool('slow_tool', 'never answers', () => new Promise<never>(() => undefined));
        const transport = new StreamableHTTPServerTransport({});
        response.on('close', () => void transport.close());
        void mcp.connect(transport).then(() => transport.handleRequest(request, response));
      });
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const text = expectOwnError(await runCli(['call', 'slow_tool', '--url', `http://127.0.0.1:${port}/mcp`, '--token', 'x', '--timeout', '1']), 'CALL_TIMED_OUT');
      expect(text).toContain('No answer to slow_tool within 1 s');
      expect(text).toContain('--timeout 2');
    } finally {
      server?.closeAllConnections();
      server?.close();
    }
  });

  it('a file that is not there: FILE_NOT_FOUND naming it', async () => {
    const missing = join(dir, 'no-such-backup.db');
    const text = expectOwnError(await runCli(['restore', missing, '--data-dir', join(dir, 'restore')]), 'FILE_NOT_FOUND');
    expect(text).toContain(missing);
  });

  it('a directory this user may not write: PERMISSION_DENIED naming it', async () => {
    // Root may write anywhere: run the command as nobody (65534) then; anyone else meets the mode as it is.
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(dir, 0o755);
    chmodSync(locked, 0o500);
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const text = expectOwnError(await runCli(['migrate', '--data-dir', join(locked, 'data')], asNobody), 'PERMISSION_DENIED');
    expect(text).toContain(join(locked, 'data'));
    expect(text).toContain('--data-dir');
  });
});
