import type { Server } from 'node:http';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, freePortInRange, mcpClient, startOrigin, startTestService, projectPorts } from '../helpers/service.ts';

/**
 * Per-project limits through the real service: tool calls per minute (over all of a project's sessions), a route
 * quota, and each project's share of the Cloudflare request budget, with one project flooding while another's calls
 * still go through.
 */
interface Refusal { code: string; message: string; fix: string; details: Record<string, unknown> }

describe('tool calls per minute and the route quota', () => {
  let env: Awaited<ReturnType<typeof startTestService>>;
  const clients: Client[] = [];
  const client = async (project: string) => {
    const made = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens[project]!);
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    env = await startTestService({ limits: { toolCallsPerMinute: 6, routesPerProject: 1 } });
  }, 120_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await env?.stop();
  });

  it('a project over its calls per minute is refused with the limit and when to retry, across sessions; another project is not', async () => {
    const [first, second] = [await client('consilio'), await client('consilio')];
    for (let i = 0; i < 3; i += 1) {
      expect((await call(first, 'tunnel_get_status')).isError).toBe(false);
      expect((await call(second, 'tunnel_get_status')).isError).toBe(false);
    }
    const auditBefore = env.service.backend.audit({ limit: 1000, principal: 'consilio' }).filter((row) => row.errorCode === 'RATE_LIMITED').length;
    const refused = await call<Refusal>(first, 'tunnel_get_status');
    expect(refused.isError).toBe(true);
    expect(refused.data.code).toBe('RATE_LIMITED');
    expect(refused.data.message).toContain('6 tool calls in the last minute');
    expect(refused.data.details).toMatchObject({ limit: 6, windowSeconds: 60 });
    const retryAfter = refused.data.details.retryAfterSeconds as number;
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.data.fix).toContain(`Retry after ${retryAfter} seconds`);
    // The other session of the same project is refused too; the flood costs one audit row, not one per call.
    for (let i = 0; i < 10; i += 1) expect((await call<Refusal>(second, 'tunnel_list_cnames')).data.code).toBe('RATE_LIMITED');
    const auditAfter = env.service.backend.audit({ limit: 1000, principal: 'consilio' }).filter((row) => row.errorCode === 'RATE_LIMITED').length;
    expect(auditAfter - auditBefore).toBe(1);

    const odin = await client('odin');
    expect((await call(odin, 'tunnel_get_status')).isError).toBe(false);
  });

  it('a project at its route quota is refused before anything is created; its existing route is still answered as done', async () => {
    const openhorizon = await client('openhorizon');
    const port = (await call<{ port: number }>(openhorizon, 'port_allocate', { purpose: 'quota' })).data.port;
    const first = await call(openhorizon, 'tunnel_request_cname', { subdomain: 'quota-one', targetPort: port, publishAhead: true });
    expect(first.isError, JSON.stringify(first.data)).toBe(false);
    const records = () => env.service.sandbox!.emulator.state().records.filter((r) => r.name === 'quota-two.153.se');
    const refused = await call<Refusal>(openhorizon, 'tunnel_request_cname', { subdomain: 'quota-two', targetPort: port, publishAhead: true });
    expect(refused.isError).toBe(true);
    expect(refused.data).toMatchObject({ code: 'ROUTE_QUOTA_EXCEEDED', details: { project: 'openhorizon', routes: 1, quota: 1 } });
    expect(refused.data.fix).toContain('limits.routesPerProject');
    expect(env.service.backend.findRoute('quota-two.153.se')).toBeUndefined();
    expect(records()).toEqual([]);
    const again = await call<{ plan: string[] }>(openhorizon, 'tunnel_request_cname', { subdomain: 'quota-one', targetPort: port, publishAhead: true });
    expect(again.isError, JSON.stringify(again.data)).toBe(false);
    expect(again.data.plan).toEqual(['already published: nothing to do']);
  }, 60_000);
});

describe('the route quota under parallel requests', () => {
  let env: Awaited<ReturnType<typeof startTestService>>;
  const clients: Client[] = [];

  beforeAll(async () => {
    env = await startTestService({ limits: { toolCallsPerMinute: 0, routesPerProject: 10 } });
  }, 120_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await env?.stop();
  });

  it('15 parallel requests from 5 sessions with a quota of 10: exactly 10 are published, 5 are refused, the quota is never overshot', async () => {
    const info = env.service.sandboxInfo!;
    for (let i = 0; i < 5; i += 1) clients.push(await mcpClient(info.mcpUrl, info.tokens.odin!));
    const port = (await call<{ port: number }>(clients[0]!, 'port_allocate', { purpose: 'quota race' })).data.port;
    // Each of the 15 requests passes the early check (the project holds 0 routes when they all start).
    const results = await Promise.all(
      Array.from({ length: 15 }, (_, i) => call<Refusal>(clients[i % 5]!, 'tunnel_request_cname', { subdomain: `race-${i}`, targetPort: port, publishAhead: true })),
    );
    const published = results.filter((result) => !result.isError);
    const refused = results.filter((result) => result.isError);
    expect(refused.map((result) => result.data.code)).toEqual(Array(5).fill('ROUTE_QUOTA_EXCEEDED'));
    for (const refusal of refused) {
      expect(refusal.data.details).toMatchObject({ project: 'odin', quota: 10 });
      expect(refusal.data.fix).toContain('limits.routesPerProject');
    }
    expect(published).toHaveLength(10);
    const rows = env.service.backend.listRoutes({ project: 'odin' });
    expect(rows.filter((route) => route.source === 'request').map((route) => route.status)).toEqual(Array(10).fill('active'));
    // Nothing of a refused request is left: no record, no row.
    const names = new Set(rows.map((route) => route.hostname));
    const records = env.service.sandbox!.emulator.state().records.filter((record) => /^race-\d+\.153\.se$/.test(record.name));
    expect(records.map((record) => record.name).sort()).toEqual([...names].sort());
  }, 120_000);
});

describe("each project's share of the Cloudflare request budget", () => {
  let env: Awaited<ReturnType<typeof startTestService>>;
  const origins: Server[] = [];
  let odin: Client;
  let consilio: Client;

  beforeAll(async () => {
    // 60 requests per 5 minutes for the service, at most 20% (12) for one project.
    env = await startTestService({ cloudflare: { requestsPerFiveMinutes: 60 }, limits: { cloudflareSharePercent: 20, toolCallsPerMinute: 0 } });
    odin = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens.odin!);
    consilio = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens.consilio!);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([odin?.close(), consilio?.close()]);
    for (const origin of origins) origin.close();
    await env?.stop();
  });

  it('one project flooding dry runs is refused at its share, and another project still publishes', async () => {
    const odinPort = (await call<{ port: number }>(odin, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'odin', [0.6, 1])), purpose: 'flood' })).data.port;
    origins.push(await startOrigin(odinPort, 'odin-flood'));
    const kept = await call(odin, 'tunnel_request_cname', { subdomain: 'odin-keep', targetPort: odinPort });
    expect(kept.isError, JSON.stringify(kept.data)).toBe(false);
    let refused: Refusal | null = null;
    let answered = 0;
    for (let i = 0; i < 40 && refused === null; i += 1) {
      const result = await call<Refusal>(odin, 'tunnel_request_cname', { subdomain: `flood-${i}`, targetPort: odinPort, dryRun: true });
      if (result.isError) refused = result.data;
      else answered += 1;
    }
    expect(refused, 'the flood was never refused').not.toBeNull();
    expect(refused!.code).toBe('CLOUDFLARE_RATE_LIMITED');
    expect(refused!.details).toMatchObject({ source: 'project-share', project: 'odin', projectLimit: 12, limit: 60 });
    expect(refused!.message).toContain('odin has used its share');
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThanOrEqual(12);

    // Clean-up is the service's work: with its share spent, odin can still delete its route, record and all.
    const deleted = await call(odin, 'tunnel_delete_cname', { hostname: 'odin-keep.153.se' });
    expect(deleted.isError, JSON.stringify(deleted.data)).toBe(false);
    expect(env.service.sandbox!.emulator.state().records.filter((r) => r.name === 'odin-keep.153.se')).toEqual([]);

    const consilioPort = (await call<{ port: number }>(consilio, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'consilio', [0.6, 1])), purpose: 'fair' })).data.port;
    origins.push(await startOrigin(consilioPort, 'consilio-fair'));
    const published = await call(consilio, 'tunnel_request_cname', { subdomain: 'fair', targetPort: consilioPort });
    expect(published.isError, JSON.stringify(published.data)).toBe(false);
    expect(env.service.sandbox!.emulator.state().records.filter((r) => r.name === 'fair.153.se')).toHaveLength(1);
  }, 90_000);
});
