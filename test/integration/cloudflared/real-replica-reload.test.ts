import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProcessRunning, waitForProcessEnd } from '../../../src/cloudflared/process-identity.ts';
import { reloadWithReplica } from '../../../src/cloudflared/replica-reload.ts';
import { SpawnDriver } from '../../../src/cloudflared/drivers/spawn-driver.ts';
import { startSandboxEdge, type SandboxEdge } from '../../../src/sandbox/edge/edge.ts';
import { realCloudflaredForTests } from '../../helpers/real-cloudflared.ts';
import { TUNNEL_ID, cloudflaredPidsFor, freePort, startOrigin, tempDir, waitReady, writeTunnelConfig } from '../../helpers/standin-cloudflared.ts';

/**
 * The replica reload on the real cloudflared when the edge does not hang up on an unregistered connection (the
 * sandbox edge's keepDrainedConnections knob): cloudflared would then stay up for its whole --grace-period (30 s),
 * holding a metrics address. The spawn driver sees it unregistered with nothing in flight and ends it with the second
 * signal cloudflared takes as "exit now".
 */
const binary = realCloudflaredForTests('the replica reload on the real cloudflared');

const dir = tempDir('real-replica');
let edge: SandboxEdge;
let origin: Awaited<ReturnType<typeof startOrigin>>;
let configPath = '';

beforeAll(async () => {
  if (binary === null) return;
  edge = await startSandboxEdge({ listen: '127.0.0.1:0', tunnelListen: '127.0.0.1:0', caDir: dir.path, keepDrainedConnections: true });
  origin = await startOrigin('real');
});

afterAll(async () => {
  if (binary === null) return;
  for (const pid of cloudflaredPidsFor(configPath)) process.kill(pid, 'SIGKILL');
  await edge.close();
  await origin.close();
  dir.remove();
});

describe.skipIf(binary === null)('the replica reload on the real cloudflared', () => {
  it('ends the old replica once it has unregistered with nothing in flight, long before its 30 s grace', async () => {
    const credentials = join(dir.path, 'credentials.json');
    writeFileSync(credentials, JSON.stringify({ AccountTag: 'test', TunnelSecret: Buffer.alloc(32, 2).toString('base64'), TunnelID: TUNNEL_ID }));
    configPath = writeTunnelConfig(join(dir.path, 'config.yml'), [{ hostname: 'app.example.com', service: `http://127.0.0.1:${origin.port}` }, { service: 'http_status:404' }]);
    const driver = new SpawnDriver({
      command: [binary as string],
      configPath,
      metricsAddress: `127.0.0.1:${await freePort()}`,
      replicaMetricsAddresses: [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`],
      tunnelId: TUNNEL_ID,
      flags: ['--grace-period', '30s', ...Array.from({ length: 4 }, () => ['--edge', edge.tunnelAddress as string]).flat(), '--cacert', edge.caPath as string, '--protocol', 'http2', '--credentials-file', credentials],
      pidfile: join(dir.path, 'cloudflared.pid'),
    });
    const first = await driver.start();
    await waitReady(driver.metricsAddress(), 4, 30_000);
    const result = await reloadWithReplica({ driver, readyTimeoutMs: 30_000, drainGraceMs: 35_000 });
    expect(result).toMatchObject({ strategy: 'replica', oldPid: first.pid });
    // The old one is still connected to the edge (which keeps drained connections open), yet it ends within seconds.
    expect(isProcessRunning(first.pid as number)).toBe(true);
    const draining = Date.now();
    expect(await waitForProcessEnd(first.pid as number, 10_000)).toBe(true);
    expect(Date.now() - draining).toBeLessThan(10_000);
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: edge.port, path: '/', headers: { host: 'app.example.com' } }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve(text));
      }).on('error', reject);
    });
    expect(body).toMatch(/^real /);
    // The live one would also wait out its grace with this edge: no need to.
    await driver.stop(1_000);
  });
});
