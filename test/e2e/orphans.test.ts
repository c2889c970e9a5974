import type { Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { call, mcpClient, portOf, projectPorts, startOriginInRange, startTestService, viaEdge } from '../helpers/service.ts';

/**
 * Orphans through the whole service: a DNS record deleted behind our back is found by tunnel_scan_orphans and
 * its owner is told; a project taken out of the configuration loses its routes (record, rule, ledger row) at
 * the scan of the next start, with a grace period of 0.
 */

type Service = Awaited<ReturnType<typeof startTestService>>;
interface EventView { kind: string; project: string; data: Record<string, unknown> }

const dataDir = mkdtempSync(join(tmpdir(), 'tm-orphans-e2e-'));
const origins: Server[] = [];
let first: Service | null = null;
let second: Service | null = null;
const clients: Client[] = [];

const boot = (projects?: unknown[]) =>
  startTestService({ dataDir, orphans: { projectRemovedGraceHours: 0 }, ...(projects ? { projects } : {}) });

async function clientsOf(service: Service, ...names: string[]): Promise<Client[]> {
  const info = service.service.sandboxInfo!;
  const made = await Promise.all(names.map((name) => mcpClient(info.mcpUrl, info.tokens[name]!)));
  clients.push(...made);
  return made;
}

const recordsNamed = (service: Service, hostname: string) =>
  (Object.values(service.service.sandbox!.emulator.state().records ?? {}).flat() as { id: string; zoneId: string; name: string }[]).filter((r) => r.name === hostname);

beforeAll(async () => {
  first = await boot();
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  origins.forEach((origin) => origin.close());
  await first?.service.stop();
  await second?.service.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('orphaned routes', () => {
  it('a record deleted outside Tunnel Manager: the scan flags the route and tells its owner what to do', async () => {
    const [consilio, odin, ms] = await clientsOf(first!, 'consilio', 'odin', 'meta-supervisor');
    // Origins on random ports of each range: other test files run at the same time and use the first ones.
    for (const [client, name] of [[consilio!, 'consilio'], [odin!, 'odin']] as const) {
      const origin = await startOriginInRange(...projectPorts(first!.config, name, [0.5, 1]), `${name}-web`);
      origins.push(origin);
      const port = (await call<{ port: number }>(client, 'port_allocate', { port: portOf(origin), purpose: 'web' })).data.port;
      const requested = await call(client, 'tunnel_request_cname', { subdomain: `${name}-web`, targetPort: port });
      expect(requested.isError, JSON.stringify(requested.data)).toBe(false);
    }

    // Someone deletes consilio's record in the dashboard (here: the Cloudflare API, with the account's token).
    const info = first!.service.sandboxInfo!;
    const [record] = recordsNamed(first!, 'consilio-web.153.se');
    const deleted = await fetch(`${info.cloudflareApiUrl}/zones/${record!.zoneId}/dns_records/${record!.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${info.cloudflareApiToken}` },
    });
    expect(deleted.status).toBe(200);

    const scan = await call<{ orphans: { hostname: string; project: string; reason: string; fix: string }[]; newlyOrphaned: string[] }>(ms!, 'tunnel_scan_orphans', {});
    expect(scan.isError, JSON.stringify(scan.data)).toBe(false);
    expect(scan.data.orphans).toEqual([expect.objectContaining({ hostname: 'consilio-web.153.se', project: 'consilio', reason: 'record-missing' })]);
    expect(scan.data.newlyOrphaned).toEqual(['consilio-web.153.se']);

    const listed = await call<{ routes: { hostname: string; orphan: { reason: string } | null }[] }>(consilio!, 'tunnel_list_cnames');
    expect(listed.data.routes).toEqual([expect.objectContaining({ hostname: 'consilio-web.153.se', orphan: expect.objectContaining({ reason: 'record-missing' }) })]);
    const events = await call<{ events: EventView[] }>(consilio!, 'tunnel_get_events', { cursor: 0 });
    const told = events.data.events.filter((e) => e.kind === 'route.orphaned');
    expect(told).toEqual([expect.objectContaining({ project: 'consilio', data: expect.objectContaining({ hostname: 'consilio-web.153.se', reason: 'record-missing' }) })]);
    expect(String(told[0]!.data.fix)).toContain('tunnel_request_cname');
    // odin's route is whole, and odin hears nothing about consilio's.
    const odinEvents = await call<{ events: EventView[] }>(odin!, 'tunnel_get_events', { cursor: 0 });
    expect(odinEvents.data.events.filter((e) => e.kind === 'route.orphaned')).toEqual([]);
  }, 60_000);

  it('a project taken out of the configuration: the next start removes its route, record and rule', async () => {
    const kept = first!.config.projects;
    await first!.service.stop();
    first = null;
    const projects = kept
      .filter((p) => p.name === 'meta-supervisor' || p.name === 'consilio')
      .map((p) => ({ name: p.name, role: p.role, ports: `${p.ports.from}-${p.ports.to}` }));
    second = await boot(projects);
    const [ms] = await clientsOf(second, 'meta-supervisor');
    const deadline = Date.now() + 30_000;
    while (second.service.backend.findRoute('odin-web.153.se') !== undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(second.service.backend.findRoute('odin-web.153.se')).toBeUndefined();
    expect(recordsNamed(second, 'odin-web.153.se')).toEqual([]);
    expect(readFileSync(second.config.cloudflared.configPath, 'utf8')).not.toContain('odin-web.153.se');
    expect((await viaEdge(second.service.sandboxInfo!.edgeUrl, 'odin-web.153.se')).status).toBe(404);

    // consilio's orphan stays flagged (its owner decides), and the meta-supervisor saw odin's route go.
    expect(second.service.backend.findRoute('consilio-web.153.se')).toMatchObject({ orphanReason: 'record-missing' });
    const events = await call<{ events: EventView[] }>(ms!, 'tunnel_get_events', { cursor: 0 });
    const odinKinds = events.data.events.filter((e) => e.data.hostname === 'odin-web.153.se').map((e) => e.kind);
    expect(odinKinds).toEqual(expect.arrayContaining(['route.orphaned', 'route.deleted']));
  }, 90_000);
});
