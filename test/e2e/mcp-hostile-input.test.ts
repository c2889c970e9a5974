import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { ALL_TOOLS } from '../../src/mcp/tools/index.ts';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * Hostile input over every tool's input schema, sent as raw JSON-RPC (so `__proto__` and `constructor` keys, null or
 * array arguments reach the server exactly as written). Whatever arrives: the answer is a result or the one error
 * shape, never an internal error; an object that is refused is refused as INPUT_INVALID naming a field; arguments
 * that are not an object are invalid params (-32602) with a readable message; every call leaves one audit row; and
 * nothing changes that a refused call must not change (routes, records, config.yml).
 */

const RUNS = Number(process.env.TM_FC_RUNS ?? 60);

interface ErrorData {
  code: string;
  message: string;
  fix: string;
  details: Record<string, unknown>;
}

interface RpcAnswer {
  result?: { isError?: boolean; structuredContent?: Record<string, unknown> };
  error?: { code: number; message: string; data?: ErrorData };
}

let env: Awaited<ReturnType<typeof startTestService>>;
let ms: Client;
let msSession: string;
let msToken: string;
let url: string;
let requestId = 1;

/** One tools/call with `argumentsJson` spliced in as written. */
async function rawCall(tool: string, argumentsJson: string): Promise<RpcAnswer> {
  const body = `{"jsonrpc":"2.0","id":${requestId++},"method":"tools/call","params":{"name":${JSON.stringify(tool)},"arguments":${argumentsJson}}}`;
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${msToken}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': msSession,
      'mcp-protocol-version': '2025-06-18',
    },
    body,
  });
  const text = await response.text();
  const data = text.split('\n').find((line) => line.startsWith('data: '));
  if (!data) throw new Error(`no JSON-RPC answer to ${body.slice(0, 200)}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(data.slice('data: '.length)) as RpcAnswer;
}

async function worldPicture(): Promise<string> {
  const routes = await call<{ routes: unknown[] }>(ms, 'tunnel_list_cnames');
  expect(routes.isError).toBe(false);
  return JSON.stringify({
    routes: routes.data.routes,
    records: env.service.sandbox!.emulator.state().records,
    config: readFileSync(env.config.cloudflared.configPath, 'utf8'),
  });
}

function auditCount(): number {
  return env.service.backend.audit({ limit: 100_000, principal: 'meta-supervisor' }).length;
}

/** Property names of a tool's input, from the JSON Schema it publishes. */
function propertiesOf(tool: string): string[] {
  const definition = ALL_TOOLS.find((t) => t.name === tool);
  const shape = (definition?.input as unknown as { shape?: Record<string, unknown> }).shape ?? {};
  return Object.keys(shape);
}

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'];

/** Values no schema should choke on: odd types, deep nesting, prototype keys inside, long and control-laden strings. */
const hostileValue: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  fc.constantFrom(
    'null',
    '[]',
    '{}',
    '{"__proto__":{"admin":true}}',
    '{"constructor":null}',
    '{"constructor":{"prototype":{"x":1}}}',
    '"__proto__"',
    '-0',
    '1e308',
    '-1e308',
    '0.1',
    '9007199254740993',
    '"\\u0000"',
    '"\\ud800"',
    '"../../../etc/passwd"',
    '"a\\nb: c"',
    '"$(reboot)"',
    '"deadbeef"',
    '"0000000000000000000000000000000000000000"',
    '"HEAD~1"',
    '"--output=/tmp/x"',
  ),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => JSON.stringify('x'.repeat(n))),
  fc.integer({ min: 10, max: 60 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
);

/**
 * An arguments object for `tool`: some of its own keys and hostile extra keys, each with a hostile value. A tool that
 * changes things always gets one key it does not know, so a generated call can never restart, delete or roll back.
 */
function hostileArguments(tool: string, mutates: boolean): fc.Arbitrary<string> {
  const own = propertiesOf(tool);
  const key = fc.oneof(
    ...(own.length > 0 ? [fc.constantFrom(...own)] : []),
    fc.constantFrom(...PROTOTYPE_KEYS, 'toString', 'hasOwnProperty', ''),
    fc.string({ maxLength: 12 }),
  );
  return fc
    .tuple(fc.array(fc.tuple(key, hostileValue), { maxLength: 5 }), fc.constantFrom(...PROTOTYPE_KEYS, 'unknownArgument'))
    .map(([entries, extra]) => {
      const pairs = entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`);
      if (mutates || pairs.length === 0) pairs.push(`${JSON.stringify(extra)}:1`);
      return `{${pairs.join(',')}}`;
    });
}

beforeAll(async () => {
  env = await startTestService();
  const info = env.service.sandboxInfo!;
  url = info.mcpUrl;
  msToken = info.tokens['meta-supervisor']!;
  ms = await mcpClient(url, msToken);
  const client = new McpClient({ name: 'hostile', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${msToken}` } } });
  await client.connect(transport);
  msSession = transport.sessionId!;
  const consilio = await mcpClient(url, info.tokens.consilio!);
  const port = await call<{ port: number }>(consilio, 'port_allocate', { purpose: 'hostile input test' });
  // Nothing listens on the port: this file is about the MCP surface, so the route is published ahead of its service.
  const route = await call(consilio, 'tunnel_request_cname', { subdomain: 'stable', targetPort: port.data.port, publishAhead: true });
  expect(route.isError, JSON.stringify(route.data)).toBe(false);
  await consilio.close();
}, 60_000);

afterAll(async () => {
  await ms?.close();
  await env?.stop();
});

describe('arguments that are not an object', () => {
  it('are invalid params (-32602) with a readable message, and audited, for every tool', async () => {
    for (const tool of ALL_TOOLS) {
      for (const [json, described] of [['null', 'null'], ['[1,2]', 'an array'], ['"x"', 'a string'], ['42', 'a number'], ['true', 'a boolean']] as const) {
        const before = auditCount();
        const answer = await rawCall(tool.name, json);
        const shown = `${tool.name} ${json} → ${JSON.stringify(answer).slice(0, 300)}`;
        expect(answer.error?.code, shown).toBe(-32602);
        expect(answer.error?.message, shown).toContain(`they were ${described}`);
        expect(answer.error?.message, shown).not.toContain('invalid_type'); // no raw zod text
        expect(answer.error?.data?.code, shown).toBe('INPUT_INVALID');
        const rows = env.service.backend.audit({ limit: 1, principal: 'meta-supervisor' });
        expect(auditCount(), shown).toBe(before + 1);
        expect(rows[0], shown).toMatchObject({ action: tool.name, outcome: 'error', errorCode: 'INPUT_INVALID' });
      }
    }
  });
});

describe('keys that would reach a prototype', () => {
  it('`__proto__`, `constructor` and `prototype` are refused by name, never dropped or followed', async () => {
    for (const key of PROTOTYPE_KEYS) {
      // `{"__proto__": {"limit": 1}}` was once read as `limit: 1` through the prototype.
      const answer = await rawCall('supervisor_inspect', `{${JSON.stringify(key)}:{"limit":1}}`);
      expect(answer.result?.isError, JSON.stringify(answer)).toBe(true);
      expect(answer.result?.structuredContent).toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining(key) });
    }
    const nullConstructor = await rawCall('supervisor_inspect', '{"constructor":null}');
    expect(nullConstructor.error).toBeUndefined();
    expect(nullConstructor.result?.structuredContent).toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('constructor') });
  });
});

describe('a commit that is not a version', () => {
  it('is INPUT_INVALID naming `commit`, not a git failure', async () => {
    for (const commit of ['deadbeef', '0000000000000000000000000000000000000000']) {
      const answer = await call<ErrorData>(ms, 'tunnel_rollback_config', { commit });
      expect(answer.isError).toBe(true);
      expect(answer.data.code).toBe('INPUT_INVALID');
      expect(answer.data.message).toContain('commit');
      expect(answer.data.fix).toContain('config history');
    }
  });
});

describe('every tool, hostile arguments (property)', () => {
  it('answers a result or the error shape, never an internal error; refusals name a field; every call is audited; nothing changes', async () => {
    const before = await worldPicture();
    const tools = ALL_TOOLS.map((tool) => ({ name: tool.name, mutates: tool.annotations.readOnlyHint !== true }));
    const arbitrary = fc.constantFrom(...tools).chain((tool) => hostileArguments(tool.name, tool.mutates).map((args) => ({ tool: tool.name, args })));
    let calls = 0;
    const auditBefore = auditCount();
    await fc.assert(
      fc.asyncProperty(arbitrary, async ({ tool, args }) => {
        calls += 1;
        const answer = await rawCall(tool, args);
        const shown = `${tool} ${args.slice(0, 300)} → ${JSON.stringify(answer).slice(0, 400)}`;
        expect(answer.error, shown).toBeUndefined();
        const content = answer.result?.structuredContent;
        expect(content, shown).toBeTypeOf('object');
        if (answer.result?.isError === true) {
          const error = content as unknown as ErrorData;
          expect(error.code, shown).not.toBe('INTERNAL');
          expect(error.code, shown).toMatch(/^[A-Z_]+$/);
          expect(error.fix.length, shown).toBeGreaterThan(0);
          expect(error.details, shown).toBeTypeOf('object');
          if (error.code === 'INPUT_INVALID') expect(error.message, shown).toMatch(/: /);
        }
      }),
      { numRuns: RUNS * 4 },
    );
    expect(auditCount() - auditBefore).toBe(calls);
    expect(await worldPicture()).toBe(before);
  }, 120_000);
});

describe('a token a caller passes', () => {
  it('is redacted in the audit row: arguments, target and details alike', async () => {
    // 40 url-safe characters: the form of a Cloudflare API token, and (lower case) a valid DNS label too.
    const token = '-abcdefghij0123456789klmnopqrstuvwxyz01-'.slice(1, -1) + 'q9';
    expect(token).toHaveLength(40);
    const answer = await call<ErrorData>(ms, 'tunnel_delete_cname', { hostname: `${token}.153.se` });
    expect(answer.isError).toBe(true);
    const [row] = env.service.backend.audit({ limit: 1, principal: 'meta-supervisor' });
    expect(row?.action).toBe('tunnel_delete_cname');
    expect(JSON.stringify(row)).not.toContain(token);
    expect(row?.target).toContain('[REDACTED]');
  });
});
