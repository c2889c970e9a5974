import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { probeTunnelHealth } from '../../../src/cloudflared/health-probe.ts';
import type { HealthSample } from '../../../src/health-sample.ts';
import { SpawnDriver } from '../../../src/cloudflared/drivers/spawn-driver.ts';
import { startSandboxEdge } from '../../../src/sandbox/edge/edge.ts';
import { REPO_ROOT, STANDIN_COMMAND, TUNNEL_ID, freePort, getViaEdge, tempDir, waitFor, writeTunnelConfig } from '../../helpers/standin-cloudflared.ts';

const dir = tempDir('health-probe');
const drivers: SpawnDriver[] = [];

afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.stop(500);
});
afterAll(() => dir.remove());

async function tunnel(name: string, env: NodeJS.ProcessEnv = {}): Promise<{ driver: SpawnDriver; metrics: string }> {
  const metrics = `127.0.0.1:${await freePort()}`;
  const driver = new SpawnDriver({
    command: STANDIN_COMMAND,
    configPath: writeTunnelConfig(join(dir.path, `${name}.yml`), [{ service: 'http_status:404' }]),
    metricsAddress: metrics,
    tunnelId: TUNNEL_ID,
    pidfile: join(dir.path, `${name}.pid`),
    cwd: REPO_ROOT,
    env: { ...process.env, TM_STANDIN_EDGE: '', ...env },
  });
  drivers.push(driver);
  await driver.start();
  return { driver, metrics };
}

function probe(driver: SpawnDriver, timeoutMs = 2000): Promise<HealthSample> {
  return probeTunnelHealth({ driver, metricsAddress: () => driver.metricsAddress(), expectedConnections: 4, timeoutMs });
}

/** Probes until the process has had time to come up (the first probes may race its start). */
function probeUntil(driver: SpawnDriver, wanted: HealthSample['result'], timeoutMs = 2000): Promise<HealthSample> {
  return waitFor(async () => {
    const sample = await probe(driver, timeoutMs);
    return sample.result === wanted ? sample : undefined;
  }, 10_000, `a ${wanted} probe`);
}

describe('health probe against the stand-in', () => {
  it('is ok with every expected connection ready, and reads the counters from /metrics', async () => {
    const edge = await startSandboxEdge({ listen: '127.0.0.1:0' });
    try {
      const { driver } = await tunnel('ok', { TM_STANDIN_EDGE: edge.address });
      const first = await probeUntil(driver, 'ok');
      expect(first).toMatchObject({ readyConnections: 4, haConnections: 4, totalRequests: 0, requestErrors: 0 });
      expect(first.pid).toBe((await driver.current())?.pid);
      expect(first.latencyMs).toBeGreaterThanOrEqual(0);
      expect(first.error).toBeUndefined();

      await getViaEdge(edge.port, 'anything.example.com');
      await getViaEdge(edge.port, 'anything.example.com');
      const second = await probe(driver);
      expect(second.totalRequests).toBe(2);
    } finally {
      await edge.close();
    }
  });

  it('is degraded when fewer connections than expected are ready', async () => {
    const { driver } = await tunnel('degraded', { TM_STANDIN_READY_CONNECTIONS: '2' });
    const sample = await probeUntil(driver, 'degraded');
    expect(sample.readyConnections).toBe(2);
    expect(sample.error).toBe('2 of 4 expected connections are ready');
  });

  it('fails when /ready answers 503', async () => {
    const { driver, metrics } = await tunnel('never-ready', { TM_STANDIN_NEVER_READY: '1' });
    const sample = await waitFor(async () => {
      const result = await probe(driver);
      return result.error?.includes('answered 503') ? result : undefined;
    }, 10_000, 'a 503 from /ready');
    expect(sample).toMatchObject({ result: 'failed', readyConnections: 0 });
    expect(sample.error).toBe(`/ready on ${metrics} answered 503 with 0 ready connection(s)`);
  });

  it('fails on a hang: three probes in a row time out while the process is up', async () => {
    const { driver } = await tunnel('hang', { TM_STANDIN_HANG: '1' });
    await waitFor(async () => (await probe(driver, 300)).error?.includes('did not answer'), 10_000, 'the hung /ready');
    const samples = [await probe(driver, 300), await probe(driver, 300), await probe(driver, 300)];
    for (const sample of samples) {
      expect(sample.result).toBe('failed');
      expect(sample.pid).not.toBeNull();
      expect(sample.error).toMatch(/\/ready on .* did not answer within 300 ms/);
    }
  });

  it('fails when no process runs', async () => {
    const { driver } = await tunnel('stopped');
    await driver.stop(2000);
    const sample = await probe(driver);
    expect(sample).toMatchObject({ result: 'failed', pid: null, error: 'cloudflared is not running' });
  });

  it('fails when the metrics address does not answer', async () => {
    const { driver } = await tunnel('wrong-address');
    const unused = `127.0.0.1:${await freePort()}`;
    const sample = await probeTunnelHealth({ driver, metricsAddress: unused, expectedConnections: 4, timeoutMs: 1000 });
    expect(sample.result).toBe('failed');
    expect(sample.error).toContain(`/ready on ${unused} is unreachable (ECONNREFUSED)`);
  });
});
