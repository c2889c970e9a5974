import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Server } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/app/config/logger.ts';
import { startTunnelManager as startService, type TunnelManager as Service } from '../../src/root/composition-root.ts';
import { call, mcpClient, portOf, projectPorts, settled, startOriginInRange, startTestService, viaEdge } from '../helpers/service.ts';

/**
 * A lost database: the next start rebuilds the ledger from what is still true in the world, the ownership markers of
 * the DNS records and the managed rules of config.yml, so every route comes back active, for its own project, with
 * its target, and never stops serving; records with our marker but no rule are adopted as before.
 */

const origins: Server[] = [];
let second: Service | undefined;
let dataDir = '';

afterAll(async () => {
  await second?.stop();
  for (const origin of origins) origin.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the ledger lost', () => {
  it('comes back from the records and config.yml: every route active, same owner and target, still serving', async () => {
    const env = await startTestService();
    dataDir = env.dataDir;
    const info = env.service.sandboxInfo!;
    const published: { hostname: string; project: string; target: string }[] = [];
    for (const project of ['consilio', 'odin'] as const) {
      const origin = await startOriginInRange(...projectPorts(env.config, project), `${project}-recovery`);
      origins.push(origin);
      const client = await mcpClient(info.mcpUrl, info.tokens[project]!);
      await call(client, 'port_allocate', { port: portOf(origin), purpose: 'recovery test' });
      const answer = await call<{ hostname: string; target: string }>(client, 'tunnel_request_cname', { subdomain: `${project}-kept`, targetPort: portOf(origin) });
      expect(answer.isError, JSON.stringify(answer.data)).toBe(false);
      published.push({ hostname: answer.data.hostname, project, target: answer.data.target });
      await client.close();
    }
    for (const route of published) expect((await viaEdge(info.edgeUrl, route.hostname)).status).toBe(200);

    // The service stops and its database is lost (config.yml, the records and the sandbox's Cloudflare stay).
    await env.service.stop();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${env.config.databasePath}${suffix}`, { force: true });

    second = await startService(env.config, { logger: createLogger({ level: process.env.TM_TEST_LOG ?? 'silent' }), mcpListen: '127.0.0.1:0', edgeListen: '127.0.0.1:0' });
    await settled(second);
    for (const route of published) {
      expect(second.backend.findRoute(route.hostname)).toMatchObject({ status: 'active', project: route.project, service: route.target, dnsCreated: true });
      // The port allocations were in the lost database too: the recovered route's port is its project's again.
      const port = second.backend.findRoute(route.hostname)?.targetPort ?? null;
      expect(second.backend.ports.list(route.project).map((allocation) => allocation.port)).toContain(port);
      expect((await viaEdge(second.sandboxInfo!.edgeUrl, route.hostname)).status, route.hostname).toBe(200);
    }
    expect(readFileSync(join(dirname(env.config.cloudflared.configPath), 'config.yml'), 'utf8')).toContain('consilio-kept.153.se');
    // The seed's records that predate us are adopted as before (no marker, so no owner to give them back to).
    expect(second.backend.findRoute('chat.153.se')).toMatchObject({ status: 'adopted', source: 'adopted' });
  }, 120_000);
});
