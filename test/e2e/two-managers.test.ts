import type { Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/app/config/config.ts';
import { createLogger } from '../../src/app/config/logger.ts';
import { startTunnelManager as startService, type TunnelManager as Service } from '../../src/root/composition-root.ts';
import type { TunnelManagerError } from '../../src/errors.ts';
import { STANDIN_CLOUDFLARED_BUNDLE } from '../../src/package-root.ts';
import { startCloudflareEmulator, type CloudflareEmulator } from '../../src/sandbox/cloudflare-emulator/index.ts';
import { startSandboxEdge, type SandboxEdge } from '../../src/sandbox/edge/edge.ts';
import { settled, portOf, projectPorts, reservedProjects, startOriginInRange } from '../helpers/service.ts';
import { freePort } from '../helpers/standin-cloudflared.ts';

/**
 * Users who outgrow one VM run one manager per VM, each with its own tunnel, on the zones of one Cloudflare account.
 * Two managers (production mode: the real SDK against one emulator account; each its own tunnel, data directory and
 * stand-in cloudflared) must never change, adopt, orphan or delete each other's records, and a name the other tunnel
 * holds is refused with a fix that says so.
 */

const TUNNEL_A = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b';
const TUNNEL_B = '0b0b0b0b-1111-4222-8333-944444444444';
const root = mkdtempSync(join(tmpdir(), 'tm-two-managers-'));
const consilio = 'consilio';

let emulator: CloudflareEmulator;
let edge: SandboxEdge;
let origin: Server;
/** One set of project ranges for both managers: the origin's port is consilio's in each. */
let projects: Awaited<ReturnType<typeof reservedProjects>> = [];
let a: Service;
let b: Service;

async function manager(name: string, tunnelId: string): Promise<Service> {
  const config = parseConfig(
    {
      dataDir: join(root, name),
      projects,
      cloudflare: { apiBaseUrl: emulator.apiBaseUrl, accountId: emulator.accountId },
      tunnel: { id: tunnelId },
      cloudflared: { command: [process.execPath, STANDIN_CLOUDFLARED_BUNDLE], metricsAddress: `127.0.0.1:${await freePort()}`, driver: 'child' },
      health: { probeIntervalSeconds: 1 },
      restart: { startTimeoutSeconds: 20, stopGraceSeconds: 5 },
      reload: { drainGraceSeconds: 1 },
    },
    name,
  );
  const service = await startService(config, { logger: createLogger({ level: process.env.TM_TEST_LOG ?? 'silent' }), mcpListen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
  // Production mode on a shared CI machine: a first start that misses its start timeout backs off and retries, so the
  // settle allows for one backoff round on top of the start timeout.
  await settled(service, 90_000);
  return service;
}

const recordsNamed = (hostname: string) => emulator.state().records.filter((record) => record.name === hostname);
const hostnamesOf = (service: Service) => service.backend.listRoutes({}).map((route) => route.hostname);

beforeAll(async () => {
  emulator = await startCloudflareEmulator({ host: '127.0.0.1', port: 0 });
  edge = await startSandboxEdge({ listen: '127.0.0.1:0' });
  // Both stand-ins (spawned with this process's environment) register with the one local edge.
  process.env.TM_STANDIN_EDGE = edge.address;
  process.env.TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN = emulator.token;
  projects = await reservedProjects();
  origin = await startOriginInRange(...projectPorts({ projects }, 'consilio'), 'two-managers');
  a = await manager('a', TUNNEL_A);
  b = await manager('b', TUNNEL_B);
  for (const service of [a, b]) service.backend.ports.allocate('consilio', 'two managers', portOf(origin));
}, 240_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  origin?.close();
  await edge?.close();
  await emulator?.close();
  rmSync(root, { recursive: true, force: true });
  delete process.env.TM_STANDIN_EDGE;
  delete process.env.TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN;
});

describe('two managers, one Cloudflare account, two tunnels', () => {
  it('each adopts only the records that point at its own tunnel', () => {
    // The account's four existing CNAMEs point at tunnel A: A adopts them, B leaves them alone.
    expect(hostnamesOf(a)).toEqual(expect.arrayContaining(['chat.153.se', 'code.153.se', 'consilio.153.se', 'hejsan.153.se']));
    expect(hostnamesOf(b)).toEqual([]);
  });

  it('a name the other tunnel holds is refused with a fix that says so, and the record is untouched', async () => {
    const mine = await a.backend.requestCname(consilio, { subdomain: 'shared', targetPort: portOf(origin) });
    expect(mine).toMatchObject({ hostname: 'shared.153.se' });
    const before = recordsNamed('shared.153.se');
    expect(before).toHaveLength(1);

    const refused = (await b.backend.requestCname(consilio, { subdomain: 'shared', targetPort: portOf(origin) }).catch((error: unknown) => error)) as TunnelManagerError;
    expect(refused).toMatchObject({ code: 'RECORD_EXISTS', details: { reason: 'other-tunnel', owner: 'consilio', tunnelTarget: `${TUNNEL_A}.cfargotunnel.com` } });
    expect(refused.message).toContain('another tunnel of this account');
    expect(refused.fix).toContain(`${TUNNEL_A}.cfargotunnel.com`);
    expect(recordsNamed('shared.153.se')).toEqual(before);
    expect(hostnamesOf(b)).not.toContain('shared.153.se');
  });

  it('neither deletes nor orphans the other\'s records', async () => {
    await b.backend.requestCname(consilio, { subdomain: 'b-only', targetPort: portOf(origin) });
    const snapshot = JSON.stringify(emulator.state().records.map((record) => [record.id, record.name, record.content, record.comment]).sort());

    // B cannot delete A's route (it is not in B's ledger), and A cannot delete B's.
    await expect(b.backend.deleteCname('shared.153.se')).rejects.toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    await expect(a.backend.deleteCname('b-only.153.se')).rejects.toMatchObject({ code: 'ROUTE_NOT_FOUND' });

    // Each one's orphan scan looks at its own ledger only: nothing of the other's is flagged, nothing changes.
    const scanA = await a.backend.scanOrphans();
    const scanB = await b.backend.scanOrphans();
    expect(JSON.stringify(scanA)).not.toContain('b-only.153.se');
    expect(JSON.stringify(scanB)).not.toContain('shared.153.se');
    expect(JSON.stringify(emulator.state().records.map((record) => [record.id, record.name, record.content, record.comment]).sort())).toBe(snapshot);
    expect(hostnamesOf(a)).not.toContain('b-only.153.se');
    expect(hostnamesOf(b)).toEqual(['b-only.153.se']);
  });
});
