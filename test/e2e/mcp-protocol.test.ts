import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * The protocol's own errors, as the MCP spec (2025-11-25) says, and tool annotations checked against what each tool
 * does: a tool that says it only reads changes nothing; a tool that says it is destructive really interrupts.
 */

let env: Awaited<ReturnType<typeof startTestService>>;
let ms: Client;
let consilio: Client;
let ownPort: number;

async function rejection(promise: Promise<unknown>): Promise<McpError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(McpError);
  return error as McpError;
}

/** Everything a read-only tool must leave alone. */
function world(): string {
  const backend = env.service.backend;
  return JSON.stringify({
    routes: backend.listRoutes({}),
    ports: backend.ports.list(),
    records: env.service.sandbox!.emulator.state().records,
    config: readFileSync(env.config.cloudflared.configPath, 'utf8'),
    events: backend.events(0, 10_000).length,
    tunnelPid: (env.service.supervisor.actor.getSnapshot().children as Record<string, { getSnapshot(): { context: { process?: { pid: number } | null } } }>).tunnel?.getSnapshot().context.process?.pid,
  });
}

beforeAll(async () => {
  env = await startTestService();
  const info = env.service.sandboxInfo!;
  ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  ownPort = (await call<{ port: number }>(consilio, 'port_allocate', { purpose: 'protocol test' })).data.port;
  // Nothing listens on the port: this file is about the MCP surface, so the route is published ahead of its service.
  const route = await call(consilio, 'tunnel_request_cname', { subdomain: 'protocol', targetPort: ownPort, publishAhead: true });
  expect(route.isError, JSON.stringify(route.data)).toBe(false);
}, 60_000);

afterAll(async () => {
  await Promise.all([ms?.close(), consilio?.close()]);
  await env?.stop();
});

describe('protocol errors', () => {
  it('an unknown tool is invalid params (-32602) with the error shape, and audited', async () => {
    const error = await rejection(consilio.callTool({ name: 'tunnel_teleport', arguments: {} }));
    expect(error.code).toBe(-32602);
    expect(error.message).toContain('There is no tool named tunnel_teleport');
    expect(error.data).toMatchObject({ code: 'INPUT_INVALID', fix: expect.stringContaining('tunnel_request_cname') });
    // The fix lists only what this caller may call.
    expect((error.data as { fix: string }).fix).not.toContain('tunnel_restart');
    const [row] = env.service.backend.audit({ limit: 1, principal: 'consilio' });
    expect(row).toMatchObject({ action: 'tunnel_teleport', outcome: 'error', errorCode: 'INPUT_INVALID' });
  });

  it('an unknown resource is -32002 (resource not found) with the error shape', async () => {
    for (const uri of ['tunnel://nothing', 'file:///etc/passwd']) {
      const error = await rejection(consilio.readResource({ uri }));
      expect(error.code).toBe(-32002);
      expect(error.data).toMatchObject({ code: 'RESOURCE_NOT_FOUND', details: { uri }, fix: expect.stringContaining('tunnel://status') });
    }
  });
});

describe('annotations tell the truth', () => {
  /** Arguments that make each read-only tool do its work rather than refuse. */
  const READ_ARGS: Record<string, Record<string, unknown>> = {
    tunnel_check_connectivity: { targetPort: 0 },
    tunnel_recommend_config: { targetPort: 0 },
  };

  it('every tool marked readOnlyHint changes nothing when it works', async () => {
    const tools = (await ms.listTools()).tools.filter((tool) => tool.annotations?.readOnlyHint === true);
    expect(tools.length).toBeGreaterThan(8);
    // Events written by the calls themselves would be changes too: none may appear.
    for (const tool of tools) {
      const args = tool.name in READ_ARGS ? { targetPort: ownPort } : {};
      const before = world();
      const result = await call(ms, tool.name, args);
      expect(result.isError, `${tool.name}: ${JSON.stringify(result.data).slice(0, 300)}`).toBe(false);
      expect(world(), `${tool.name} changed something`).toBe(before);
    }
  });

  it('tunnel_restart is marked destructive, and it does interrupt: cloudflared is a new process', async () => {
    const restart = (await ms.listTools()).tools.find((tool) => tool.name === 'tunnel_restart');
    expect(restart?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    const before = (await call<{ pid: number | null }>(ms, 'tunnel_get_status')).data.pid;
    const after = (await call<{ pid: number }>(ms, 'tunnel_restart')).data.pid;
    expect(after).not.toBe(before);
  });
});

describe('progress notifications', () => {
  it('a request and a delete with a progressToken report each saga step, in order', async () => {
    const heard: { progress: number; message?: string | undefined }[] = [];
    const onprogress = (progress: { progress: number; message?: string | undefined }): void => {
      heard.push(progress);
    };
    const published = await consilio.callTool({ name: 'tunnel_request_cname', arguments: { subdomain: 'progress', targetPort: ownPort, publishAhead: true } }, undefined, { onprogress });
    expect(published.isError, JSON.stringify(published.structuredContent)).not.toBe(true);
    const steps = heard.map((p) => p.message ?? '');
    expect(steps.length).toBeGreaterThanOrEqual(4);
    expect(steps.every((message) => message.startsWith('publishing progress.153.se: '))).toBe(true);
    expect(heard.map((p) => p.progress)).toEqual(heard.map((_, i) => i + 1));
    expect(steps.join(' ')).toMatch(/creatingDns|dns/i);

    heard.length = 0;
    const deleted = await consilio.callTool({ name: 'tunnel_delete_cname', arguments: { hostname: 'progress.153.se' } }, undefined, { onprogress });
    expect(deleted.isError).not.toBe(true);
    expect(heard.length).toBeGreaterThanOrEqual(3);
    expect(heard.every((p) => p.message?.startsWith('deleting progress.153.se: '))).toBe(true);
  });
});

describe('tools/list as a client receives it', () => {
  it('uses the portable spelling everywhere, the shared error shape included', async () => {
    const { tools } = await ms.listTools();
    const problems: string[] = [];
    const visit = (node: unknown, path: string): void => {
      if (node === null || typeof node !== 'object') return;
      if (Array.isArray(node)) {
        node.forEach((item, index) => visit(item, `${path}[${index}]`));
        return;
      }
      const schema = node as Record<string, unknown>;
      if (Array.isArray(schema.type)) problems.push(`${path}: type ${JSON.stringify(schema.type)}`);
      for (const [key, value] of Object.entries(schema)) {
        if (key === 'properties' && value !== null && typeof value === 'object') {
          for (const [name, property] of Object.entries(value)) visit(property, `${path}.${name}`);
        } else if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0 && key !== 'properties') {
          problems.push(`${path}.${key}: empty schema`);
        } else visit(value, `${path}.${key}`);
      }
    };
    for (const tool of tools) {
      visit(tool.inputSchema, `${tool.name}.input`);
      visit(tool.outputSchema, `${tool.name}.output`);
    }
    expect(problems).toEqual([]);
    const error = (tools[0]?.outputSchema as unknown as { anyOf: Record<string, unknown>[] }).anyOf[1];
    expect(error).toMatchObject({ required: ['code', 'message', 'fix', 'details'], additionalProperties: false });
  });
});

describe('cancellation', () => {
  it('a request cancelled while its DNS record is being created undoes it all: no row, no record, no rule', async () => {
    const events: { kind: string; data: Record<string, unknown> }[] = [];
    const unsubscribe = env.service.bus.subscribe((event) => events.push(event));
    // The record's creation takes 1.5 s, so the cancel arrives while that step runs.
    env.service.sandbox!.emulator.setFaults([{ route: 'POST /zones/:zone/dns_records', latencyMs: 1500 }]);
    const controller = new AbortController();
    try {
      const call = consilio.callTool({ name: 'tunnel_request_cname', arguments: { subdomain: 'cancelled', targetPort: ownPort, publishAhead: true } }, undefined, {
        signal: controller.signal,
        onprogress: (progress) => {
          if (progress.message?.endsWith('creatingDns')) controller.abort('changed my mind');
        },
      });
      await expect(call).rejects.toThrow();
      const failed = await waitUntil(() => events.find((event) => event.kind === 'route.failed' && event.data.hostname === 'cancelled.153.se'), 15_000, 'the cancelled saga to end');
      expect(failed.data.error).toMatchObject({ code: 'CANCELLED' });
      expect(failed.data.compensationErrors).toEqual([]);
    } finally {
      env.service.sandbox!.emulator.setFaults([]);
      unsubscribe();
    }
    expect(env.service.backend.findRoute('cancelled.153.se')).toBeUndefined();
    expect(env.service.sandbox!.emulator.state().records.filter((record) => record.name === 'cancelled.153.se')).toEqual([]);
    expect(readFileSync(env.config.cloudflared.configPath, 'utf8')).not.toContain('cancelled.153.se');
    const [row] = env.service.backend.audit({ limit: 1, principal: 'consilio' });
    expect(row).toMatchObject({ action: 'tunnel_request_cname', errorCode: 'CANCELLED' });
  });
});
