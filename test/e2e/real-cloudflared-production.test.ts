import type { Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/app/config/config.ts';
import { createLogger } from '../../src/app/config/logger.ts';
import { isProcessRunning } from '../../src/cloudflared/process-identity.ts';
import { startTunnelManager as startService, type TunnelManager as Service } from '../../src/root/composition-root.ts';
import { startCloudflareEmulator, type CloudflareEmulator } from '../../src/sandbox/cloudflare-emulator/index.ts';
import { emulatorTunnelDirectory } from '../../src/sandbox/cloudflare-emulator/tunnel-directory.ts';
import { startSandboxEdge, type SandboxEdge } from '../../src/sandbox/edge/edge.ts';
import { waitUntil } from '../helpers/cli.ts';
import { realCloudflaredForTests } from '../helpers/real-cloudflared.ts';
import { keepAliveTraffic } from '../helpers/traffic.ts';
import { portOf, projectPorts, reservedProjects, settled, startOriginInRange, viaEdge } from '../helpers/service.ts';
import { cloudflaredPidsFor, freePort } from '../helpers/standin-cloudflared.ts';

/**
 * The real cloudflared 2026.3.0 the way a VM runs it: the manager in production mode (the real Cloudflare SDK against
 * the API emulator), cloudflared started with its own credentials file and pointed at the local edge through its
 * environment (TUNNEL_EDGE, TUNNEL_CACERT, TUNNEL_TRANSPORT_PROTOCOL, as a test of a real VM would not need). The edge
 * runs in this process, so it outlives the managers: a clean restart of the manager must leave the tunnel serving.
 */
const binary = realCloudflaredForTests('the real cloudflared under a production-mode manager');

const root = mkdtempSync(join(tmpdir(), 'tm-real-production-'));
const consilio = 'consilio';
let emulator: CloudflareEmulator;
let edge: SandboxEdge;
let origin: Server;
/** The embedded projects with port ranges of this run's own (tests that share a host). */
let projects: Awaited<ReturnType<typeof reservedProjects>>;
const services: Service[] = [];
const configPaths: string[] = [];

async function productionConfig(name: string, overrides: Record<string, unknown> = {}): Promise<Config> {
  const tunnel = emulator.tunnel(emulator.tunnelId);
  const credentials = join(root, `${name}-credentials.json`);
  writeFileSync(credentials, JSON.stringify({ AccountTag: tunnel?.accountId, TunnelSecret: tunnel?.secret, TunnelID: emulator.tunnelId }), { mode: 0o600 });
  const dataDir = join(root, name);
  configPaths.push(join(dataDir, 'cloudflared', 'config.yml'));
  return parseConfig(
    {
      dataDir,
      projects,
      cloudflare: { apiBaseUrl: emulator.apiBaseUrl, accountId: emulator.accountId },
      tunnel: { id: emulator.tunnelId },
      cloudflared: { command: [binary], metricsAddress: `127.0.0.1:${await freePort()}`, credentialsFile: credentials },
      health: { probeIntervalSeconds: 1 },
      restart: { startTimeoutSeconds: 30, stopGraceSeconds: 10 },
      reload: { drainGraceSeconds: 30 },
      labels: { enabled: false },
      ...overrides,
    },
    name,
  );
}

async function start(config: Config): Promise<Service> {
  const service = await startService(config, { logger: createLogger({ level: process.env.TM_TEST_LOG ?? 'silent' }), mcpListen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
  services.push(service);
  await settled(service, 90_000);
  return service;
}

beforeAll(async () => {
  if (binary === null) return;
  emulator = await startCloudflareEmulator({ host: '127.0.0.1', port: 0 });
  edge = await startSandboxEdge({ listen: '127.0.0.1:0', tunnelListen: '127.0.0.1:0', caDir: join(root, 'edge'), tunnels: emulatorTunnelDirectory(emulator) });
  // cloudflared reads these from the environment the manager spawns it with: the local edge instead of Cloudflare's.
  process.env.TUNNEL_EDGE = Array.from({ length: 4 }, () => edge.tunnelAddress).join(',');
  process.env.TUNNEL_CACERT = edge.caPath as string;
  process.env.TUNNEL_TRANSPORT_PROTOCOL = 'http2';
  process.env.TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN = emulator.token;
  projects = await reservedProjects();
  origin = await startOriginInRange(...projectPorts({ projects }, 'consilio', [0.5, 1]), 'real-production');
}, 60_000);

afterEach(async () => {
  for (const service of services.splice(0)) await service.stop();
});

afterAll(async () => {
  if (binary === null) return;
  for (const configPath of configPaths) for (const pid of cloudflaredPidsFor(configPath)) process.kill(pid, 'SIGKILL');
  origin?.close();
  await edge?.close();
  await emulator?.close();
  for (const name of ['TUNNEL_EDGE', 'TUNNEL_CACERT', 'TUNNEL_TRANSPORT_PROTOCOL', 'TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN']) delete process.env[name];
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(binary === null)('the real cloudflared under a production-mode manager', () => {
  it('a clean restart of the manager adopts the running cloudflared (same pid) and the route keeps serving: 0 failed requests', async () => {
    const config = await productionConfig('spawn', { cloudflared: { command: [binary], metricsAddress: `127.0.0.1:${await freePort()}`, credentialsFile: join(root, 'spawn-credentials.json'), driver: 'spawn' } });
    const first = await start(config);
    first.backend.ports.allocate('consilio', 'adoption', portOf(origin));
    await first.backend.requestCname(consilio, { subdomain: 'adopted-real', targetPort: portOf(origin) });
    expect((await viaEdge(`http://${edge.address}`, 'adopted-real.153.se')).status).toBe(200);
    const pid = first.backend.status().pid;

    const load = keepAliveTraffic({ port: edge.port }, 'adopted-real.153.se');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await first.stop();
    services.splice(services.indexOf(first), 1);
    expect(pid !== null && isProcessRunning(pid)).toBe(true);
    const second = await start(config);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await load.stop();

    expect(second.backend.status()).toMatchObject({ pid, adopted: true });
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(20);
  });

  it('the child driver stops cloudflared gracefully with the manager (SIGTERM, unregister, drained), long before its 30 s grace period', async () => {
    const config = await productionConfig('child', { cloudflared: { command: [binary], metricsAddress: `127.0.0.1:${await freePort()}`, credentialsFile: join(root, 'child-credentials.json'), driver: 'child' } });
    const service = await start(config);
    service.backend.ports.allocate('consilio', 'graceful stop', portOf(origin));
    await service.backend.requestCname(consilio, { subdomain: 'graceful-real', targetPort: portOf(origin) });
    const pid = service.backend.status().pid as number;
    const stopping = Date.now();
    await service.stop();
    services.splice(services.indexOf(service), 1);
    expect(isProcessRunning(pid)).toBe(false);
    expect(Date.now() - stopping).toBeLessThan(10_000);
  });

  it('a remotely managed tunnel: the route goes to Cloudflare\'s API, the edge pushes it to the running cloudflared, and it serves with no restart', async () => {
    const config = await productionConfig('remote', { tunnel: { id: emulator.tunnelId, remotelyManaged: true } });
    const service = await start(config);
    const pid = service.backend.status().pid;
    service.backend.ports.allocate('consilio', 'remote', portOf(origin));
    await service.backend.requestCname(consilio, { subdomain: 'remote-real', targetPort: portOf(origin) });
    await waitUntil(async () => ((await viaEdge(`http://${edge.address}`, 'remote-real.153.se')).status === 200 ? true : undefined), 15_000, 'the pushed rule to serve');
    const version = emulator.tunnel(emulator.tunnelId)?.version;
    expect(edge.connectors().find((connector) => connector.kind === 'cloudflared')?.appliedVersion).toBe(version);
    expect(service.backend.status().pid).toBe(pid);
  });
});
