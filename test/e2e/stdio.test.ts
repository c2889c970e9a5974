import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';

/** MCP over stdio: the client launches the service, and the principal is the one fixed on the command line. */
let dir: string;
let client: Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tm-stdio-'));
  const config = join(dir, 'tm.yml');
  writeFileSync(config, `dataDir: ${join(dir, 'data')}\ncloudflared:\n  metricsAddress: 127.0.0.1:0\n`);
  client = new Client({ name: 'stdio-test', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'serve', '--config', config, '--stdio', '--project', 'odin', '--edge-listen', '127.0.0.1:0'],
      stderr: 'ignore',
    }),
  );
}, 60_000);

afterAll(async () => {
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('MCP over stdio', () => {
  it('acts as the project named at launch, with that project’s rights only', async () => {
    const ping = await client.callTool({ name: 'tunnel_ping', arguments: {} });
    expect(ping.structuredContent).toMatchObject({ pong: true, project: 'odin' });
    const port = await client.callTool({ name: 'port_allocate', arguments: { purpose: 'web' } });
    expect(port.structuredContent).toMatchObject({ port: 3300, project: 'odin' });
    const denied = await client.callTool({ name: 'tunnel_get_audit', arguments: {} });
    expect(denied.isError).toBe(true);
    expect(denied.structuredContent).toMatchObject({ code: 'FORBIDDEN' });
  });
});
