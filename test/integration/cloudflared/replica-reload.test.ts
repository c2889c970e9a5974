import http from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CloudflaredConfig } from '../../../src/ingress-model.ts';
import { isProcessRunning, waitForProcessEnd } from '../../../src/cloudflared/process-identity.ts';
import { assertAddressFree } from '../../../src/cloudflared/metrics-address.ts';
import { pushRemoteConfiguration, reloadWithReplica, restartTunnel } from '../../../src/cloudflared/replica-reload.ts';
import { SpawnDriver } from '../../../src/cloudflared/drivers/spawn-driver.ts';
import { startSandboxEdge, type SandboxEdge } from '../../../src/sandbox/edge/edge.ts';
import { REPO_ROOT, STANDIN_COMMAND, TUNNEL_ID, freePort, getViaEdge, startOrigin, tempDir, waitReady, writeTunnelConfig } from '../../helpers/standin-cloudflared.ts';

const dir = tempDir('replica-reload');
let edge: SandboxEdge;
let blue: Awaited<ReturnType<typeof startOrigin>>;
let green: Awaited<ReturnType<typeof startOrigin>>;
const drivers: SpawnDriver[] = [];

beforeAll(async () => {
  edge = await startSandboxEdge({ listen: '127.0.0.1:0' });
  blue = await startOrigin('blue');
  green = await startOrigin('green');
});
afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.stop(500);
});
afterAll(async () => {
  await edge.close();
  await blue.close();
  await green.close();
  dir.remove();
});

async function runningTunnel(name: string, env: NodeJS.ProcessEnv = {}): Promise<{ driver: SpawnDriver; configPath: string; env: NodeJS.ProcessEnv }> {
  const configPath = writeTunnelConfig(join(dir.path, `${name}.yml`), [
    { hostname: 'app.example.com', service: `http://127.0.0.1:${blue.port}` },
    { service: 'http_status:404' },
  ]);
  const driverEnv: NodeJS.ProcessEnv = { ...process.env, TM_STANDIN_EDGE: edge.address, ...env };
  const driver = new SpawnDriver({
    command: STANDIN_COMMAND,
    configPath,
    metricsAddress: `127.0.0.1:${await freePort()}`,
    replicaMetricsAddresses: [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`],
    tunnelId: TUNNEL_ID,
    flags: ['--grace-period', '2s'],
    pidfile: join(dir.path, `${name}.pid`),
    cwd: REPO_ROOT,
    env: driverEnv,
  });
  drivers.push(driver);
  await driver.start();
  await waitReady(driver.metricsAddress());
  return { driver, configPath, env: driverEnv };
}

describe('reload without downtime', () => {
  it('starts a replica on the new config, waits for /ready, then drains the old one — with no failed request', async () => {
    const { driver, configPath } = await runningTunnel('replica');
    const oldPid = (await driver.current())!.pid;
    expect((await getViaEdge(edge.port, 'app.example.com')).body).toMatch(/^blue /);

    writeTunnelConfig(configPath, [
      { hostname: 'app.example.com', service: `http://127.0.0.1:${green.port}` },
      { service: 'http_status:404' },
    ]);
    const statuses: number[] = [];
    let sending = true;
    const traffic = (async () => {
      while (sending) statuses.push((await getViaEdge(edge.port, 'app.example.com')).status);
    })();
    const result = await reloadWithReplica({ driver, readyTimeoutMs: 10_000, drainGraceMs: 5_000 });
    sending = false;
    await traffic;

    expect(result.strategy).toBe('replica');
    expect(result.fallbackReason).toBeUndefined();
    expect(result.oldPid).toBe(oldPid);
    expect(result.newPid).not.toBe(oldPid);
    expect(result.overlapMs).toBeGreaterThanOrEqual(0);
    expect(result.durationMs).toBeGreaterThanOrEqual(result.overlapMs);
    // The reload is done once the replica is live; the old one drains in the background and then ends.
    expect(await waitForProcessEnd(oldPid!, 10_000)).toBe(true);
    expect((await driver.current())?.pid).toBe(result.newPid);
    // The live replica answers on the other metrics address, and the probe follows it.
    await waitReady(driver.metricsAddress());
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect((await getViaEdge(edge.port, 'app.example.com')).body).toMatch(/^green /);

    // A second reload goes back to the first metrics address.
    const again = await reloadWithReplica({ driver, readyTimeoutMs: 10_000, drainGraceMs: 5_000 });
    expect(again.strategy).toBe('replica');
    expect(await waitForProcessEnd(result.newPid!, 10_000)).toBe(true);
  });

  it('replicas take three metrics addresses in turn: a new one skips the addresses old replicas still drain on', async () => {
    // Old replicas that ignore SIGTERM drain for the whole grace (3 s here), as a real cloudflared whose edge keeps
    // its connections open would for its --grace-period.
    const { driver } = await runningTunnel('in-turn', { TM_STANDIN_IGNORE_SIGTERM: '1' });
    const addresses = driver.metricsAddresses();
    expect(addresses).toHaveLength(3);
    const takeOver = async (): Promise<number> => {
      const old = (await driver.current())!;
      const replica = await driver.spawnProcess(driver.nextMetricsAddress());
      await waitReady(replica.metricsAddress);
      driver.promote(replica);
      void driver.drain(old.pid!, old.handle!, 3_000);
      return old.pid!;
    };
    expect(driver.nextMetricsAddress()).toBe(addresses[1]);
    const first = await takeOver();
    // The first address is still held by the draining replica: the next one goes to the third.
    expect(driver.nextMetricsAddress()).toBe(addresses[2]);
    await takeOver();
    // Every other address is held: the one whose drain started first is next, once it has ended.
    expect(driver.nextMetricsAddress()).toBe(addresses[0]);
    expect(isProcessRunning(first)).toBe(true);
    await driver.drained(addresses[0]!);
    expect(isProcessRunning(first)).toBe(false);
    await driver.drained(addresses[1]!);
  });

  it('a start after a crash does not take the address an old replica still drains on', async () => {
    const { driver } = await runningTunnel('crash-after-reload', { TM_STANDIN_IGNORE_SIGTERM: '1' });
    const addresses = driver.metricsAddresses();
    const oldPid = (await driver.current())!.pid!;
    const live = (await driver.spawnProcess(driver.nextMetricsAddress()));
    await waitReady(live.metricsAddress);
    driver.promote(live);
    void driver.drain(oldPid, addresses[0]!, 3_000);
    process.kill(live.pid, 'SIGKILL');
    await waitForProcessEnd(live.pid, 5_000);
    // The old replica still holds the first address: the fresh start takes the next free one and comes up.
    expect(isProcessRunning(oldPid)).toBe(true);
    expect(driver.metricsAddress()).toBe(addresses[1]);
    const started = await driver.start();
    expect(started.handle).toBe(addresses[1]);
    await waitReady(addresses[1]!);
    // It ignores SIGTERM: the drain ends it with SIGKILL at its grace; nothing is left behind.
    await driver.drained(addresses[0]!);
  });

  it('keeps the old tunnel running when cloudflared refuses the new config', async () => {
    const { driver, configPath } = await runningTunnel('invalid');
    const oldPid = (await driver.current())!.pid;
    writeTunnelConfig(configPath, [{ hostname: 'app.example.com:8080', service: `http://127.0.0.1:${green.port}` }, { service: 'http_status:404' }]);
    const failure = await reloadWithReplica({ driver, readyTimeoutMs: 10_000, drainGraceMs: 5_000 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'RELOAD_FAILED' });
    const { message, details } = failure as { message: string; details: { log: string; exit: { code: number } } };
    expect(message).toContain(`The running tunnel (pid ${oldPid}) keeps the previous configuration`);
    expect(details.exit.code).toBe(1);
    expect(details.log).toContain('ingress[0] (hostname app.example.com:8080)');
    expect((await driver.current())?.pid).toBe(oldPid);
    expect(isProcessRunning(oldPid!)).toBe(true);
    const still = await getViaEdge(edge.port, 'app.example.com');
    expect(still.status).toBe(200);
    expect(still.body).toMatch(/^blue /);
  });

  it('a replica that is not ready in time is stopped and the running tunnel keeps serving (never a restart)', async () => {
    const { driver, env } = await runningTunnel('slow');
    const oldPid = (await driver.current())!.pid;
    env.TM_STANDIN_SLOW_START = '30';
    const failure = await reloadWithReplica({ driver, readyTimeoutMs: 800, drainGraceMs: 3_000 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'RELOAD_FAILED', details: { keptRunning: true, foreignAnswer: false }, fix: expect.stringContaining('reload.replicaReadyTimeoutSeconds') });
    const replicaPid = (failure as { details: { replicaPid: number } }).details.replicaPid;
    expect(isProcessRunning(replicaPid)).toBe(false);
    // The only working process was never stopped: same pid, still serving.
    expect((await driver.current())?.pid).toBe(oldPid);
    expect(isProcessRunning(oldPid!)).toBe(true);
    expect((await getViaEdge(edge.port, 'app.example.com')).status).toBe(200);
  });

  it('never promotes a replica when another program answers /ready on its address', async () => {
    const { driver } = await runningTunnel('squatted');
    const oldPid = (await driver.current())!.pid;
    const address = driver.nextMetricsAddress();
    const port = Number(address.split(':')[1]);
    // A foreign program that answers /ready with 200 on the replica's address, started after the free-address check
    // could pass (here: no check is injected, as when the address is taken between the check and the spawn).
    const squatter = http.createServer((_request, response) => response.end('{"status":200,"readyConnections":4}'));
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const failure = await reloadWithReplica({ driver, readyTimeoutMs: 3_000, drainGraceMs: 3_000 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'RELOAD_FAILED', details: { keptRunning: true } });
      expect((await driver.current())?.pid).toBe(oldPid);
      expect(isProcessRunning(oldPid!)).toBe(true);
      expect((await getViaEdge(edge.port, 'app.example.com')).status).toBe(200);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it('checks the replica\'s address is free before spawning it', async () => {
    const { driver } = await runningTunnel('taken');
    const oldPid = (await driver.current())!.pid;
    const address = driver.nextMetricsAddress();
    const squatter = http.createServer((_request, response) => response.end('ok'));
    await new Promise<void>((resolve) => squatter.listen(Number(address.split(':')[1]), '127.0.0.1', resolve));
    try {
      const failure = await reloadWithReplica({ driver, readyTimeoutMs: 3_000, drainGraceMs: 3_000, assertAddressFree }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'RELOAD_FAILED', details: { keptRunning: true, metricsAddress: address }, fix: expect.stringContaining('ss -ltnp') });
      expect((await driver.current())?.pid).toBe(oldPid);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it('an aborted reload stops its replica and leaves the running tunnel alone', async () => {
    const { driver, env } = await runningTunnel('aborted');
    const oldPid = (await driver.current())!.pid;
    env.TM_STANDIN_SLOW_START = '30';
    const controller = new AbortController();
    const reloading = reloadWithReplica({ driver, readyTimeoutMs: 20_000, drainGraceMs: 3_000, signal: controller.signal }).catch((error: unknown) => error);
    controller.abort();
    const failure = await reloading;
    expect(failure).toMatchObject({ code: 'RELOAD_FAILED', details: { keptRunning: true } });
    expect(isProcessRunning((failure as { details: { replicaPid: number } }).details.replicaPid)).toBe(false);
    expect((await driver.current())?.pid).toBe(oldPid);
    expect(isProcessRunning(oldPid!)).toBe(true);
  });

  it('restarts any driver in place with restartTunnel', async () => {
    const { driver } = await runningTunnel('restart');
    const oldPid = (await driver.current())!.pid;
    const result = await restartTunnel(driver, 3_000);
    expect(result).toMatchObject({ strategy: 'restart', oldPid, overlapMs: 0 });
    expect(result.newPid).not.toBe(oldPid);
  });
});

describe('remotely managed tunnel', () => {
  const valid: CloudflaredConfig = { ingress: [{ hostname: 'app.example.com', service: 'http://localhost:3100' }, { service: 'http_status:404' }], extra: {} };

  it('pushes a valid configuration through the injected API call, with no restart', async () => {
    const pushed: CloudflaredConfig[] = [];
    const result = await pushRemoteConfiguration({ config: valid, currentPid: 1234, putConfiguration: async (config) => pushed.push(config) });
    expect(pushed).toEqual([valid]);
    expect(result).toMatchObject({ strategy: 'remote', newPid: 1234, oldPid: 1234, overlapMs: 0 });
  });

  it('refuses an invalid configuration before calling the API', async () => {
    const pushed: CloudflaredConfig[] = [];
    const invalid: CloudflaredConfig = { ingress: [{ hostname: 'app.example.com', service: 'http://localhost:3100' }], extra: {} };
    await expect(pushRemoteConfiguration({ config: invalid, putConfiguration: async (config) => pushed.push(config) })).rejects.toMatchObject({
      code: 'INGRESS_INVALID',
      message: expect.stringContaining('ingress[0] (hostname app.example.com)'),
    });
    expect(pushed).toEqual([]);
  });
});
