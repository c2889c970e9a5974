import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { RoutesRepository } from '../../src/store/routes-repository.ts';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

let env: Awaited<ReturnType<typeof startTestService>>;
let ms: Client;
let odin: Client;

beforeAll(async () => {
  env = await startTestService();
  const routes = new RoutesRepository(env.service.db);
  for (let i = 0; i < 7; i += 1) {
    routes.insert({
      hostname: `page${i}.153.se`,
      zoneId: 'z',
      zoneName: '153.se',
      project: i % 2 === 0 ? 'odin' : 'consilio',
      targetPort: 3300 + i,
      service: null,
      targetReason: null,
      path: null,
      originRequest: null,
      dnsRecordId: null,
      dnsCreated: false,
      status: 'active',
      source: 'request',
      expiresAt: null,
      at: Date.now(),
    });
  }
  const info = env.service.sandboxInfo!;
  ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  odin = await mcpClient(info.mcpUrl, info.tokens.odin!);
}, 60_000);

afterAll(async () => {
  await Promise.all([ms?.close(), odin?.close()]);
  await env?.stop();
});

type Page = { routes: { hostname: string; project: string }[]; count: number; total: number; nextCursor: string | null };

async function everyPage(client: Client, args: Record<string, unknown>): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const page: { isError: boolean; data: Page } = await call<Page>(client, 'tunnel_list_cnames', { ...args, ...(cursor === null ? {} : { cursor }) });
    expect(page.isError, JSON.stringify(page.data)).toBe(false);
    pages.push(page.data);
    cursor = page.data.nextCursor;
  } while (cursor !== null && pages.length < 20);
  return pages;
}

describe('tunnel_list_cnames pages', () => {
  it('pages through every route once, in hostname order, with the total on each page', async () => {
    const pages = await everyPage(ms, { limit: 3, project: undefined });
    const hostnames = pages.flatMap((p) => p.routes.map((r) => r.hostname));
    const total = pages[0]!.total;
    expect(hostnames).toHaveLength(total);
    expect(new Set(hostnames).size).toBe(total);
    expect([...hostnames].sort()).toEqual(hostnames);
    expect(pages.map((p) => p.count)).toEqual([...Array(Math.floor(total / 3)).fill(3), ...(total % 3 ? [total % 3] : [])]);
    expect(pages.at(-1)!.nextCursor).toBeNull();
  });

  it('a project supervisor pages through its own routes only', async () => {
    const pages = await everyPage(odin, { limit: 2 });
    const routes = pages.flatMap((p) => p.routes);
    expect(routes.map((r) => r.hostname)).toEqual(['page0.153.se', 'page2.153.se', 'page4.153.se', 'page6.153.se']);
    expect(routes.every((r) => r.project === 'odin')).toBe(true);
    expect(pages[0]!.total).toBe(4);
  });

  it('refuses a page size out of range, naming the field', async () => {
    const refused = await call<{ code: string; message: string }>(ms, 'tunnel_list_cnames', { limit: 0 });
    expect(refused.isError).toBe(true);
    expect(refused.data.code).toBe('INPUT_INVALID');
    expect(refused.data.message).toContain('limit');
  });
});
