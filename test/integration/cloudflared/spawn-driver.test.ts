import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isProcessRunning } from '../../../src/cloudflared/process-identity.ts';
import type { ProcessExit } from '../../../src/cloudflared/process-driver.ts';
import { SpawnDriver, type SpawnDriverOptions } from '../../../src/cloudflared/drivers/spawn-driver.ts';
import { REPO_ROOT, STANDIN_COMMAND, TUNNEL_ID, freePort, tempDir, waitFor, waitReady, writeTunnelConfig } from '../../helpers/standin-cloudflared.ts';

const run = promisify(execFile);
const dir = tempDir('spawn-driver');
const pids = new Set<number>();

afterEach(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
});
afterAll(() => dir.remove());

async function optionsFor(name: string, env: NodeJS.ProcessEnv = {}): Promise<SpawnDriverOptions> {
  const config = writeTunnelConfig(join(dir.path, `${name}.yml`), [{ service: 'http_status:404' }]);
  return {
    command: STANDIN_COMMAND,
    configPath: config,
    metricsAddress: `127.0.0.1:${await freePort()}`,
    replicaMetricsAddresses: [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`],
    tunnelId: TUNNEL_ID,
    flags: ['--grace-period', '1s', '--no-autoupdate'],
    pidfile: join(dir.path, `${name}.pid`),
    cwd: REPO_ROOT,
    env: { ...process.env, TM_STANDIN_EDGE: '', ...env },
  };
}

function track(pid: number | null): number {
  expect(pid).toBeGreaterThan(0);
  pids.add(pid as number);
  return pid as number;
}

describe('spawn driver with real detached processes', () => {
  it('starts cloudflared detached with a pidfile naming it, and stops it gracefully', async () => {
    const options = await optionsFor('basic');
    const driver = new SpawnDriver(options);
    const started = await driver.start();
    const pid = track(started.pid);
    expect(started.adopted).toBe(false);
    expect(JSON.parse(readFileSync(options.pidfile, 'utf8'))).toMatchObject({ pid, metricsAddress: options.metricsAddress });
    await waitReady(options.metricsAddress);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual([...driver.argvFor(options.metricsAddress), '']);
    expect(await driver.start()).toMatchObject({ pid, adopted: true });

    const outcome = await driver.stop(5_000);
    expect(outcome.how).toBe('graceful');
    expect(isProcessRunning(pid)).toBe(false);
    expect(await driver.current()).toBeNull();
    expect((await driver.stop(5_000)).how).toBe('not-running');
  });

  it('notices a crash through watch', async () => {
    const driver = new SpawnDriver(await optionsFor('crash', { TM_STANDIN_EXIT_AFTER: '0.8' }));
    const started = await driver.start();
    track(started.pid);
    const exit = await new Promise<ProcessExit>((resolve) => driver.watch(started, resolve));
    expect(exit.code).toBe(1);
    expect(exit.reason).toBe('exited with code 1');
  });

  it('a restarted manager adopts the running tunnel: same pid, no restart, and still sees it die', async () => {
    const options = await optionsFor('adopt');
    // The first manager is its own process: it starts the tunnel and exits.
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test/integration/cloudflared/fixtures/manager-start-then-exit.ts'), JSON.stringify(options)], {
      cwd: REPO_ROOT,
    });
    const first = JSON.parse(stdout) as { pid: number; adopted: boolean };
    const pid = track(first.pid);
    expect(first.adopted).toBe(false);
    await waitReady(options.metricsAddress);
    expect(isProcessRunning(pid)).toBe(true);

    const driver = new SpawnDriver(options);
    const adopted = await driver.start();
    expect(adopted).toMatchObject({ pid, adopted: true });
    expect(await driver.current()).toMatchObject({ pid, adopted: true });

    let exit: ProcessExit | null = null;
    driver.watch(adopted, (ended) => (exit = ended));
    process.kill(pid, 'SIGKILL');
    await waitFor(() => exit, 2000, 'the adopted process to be seen gone');
    expect(exit!.reason).toContain(`pid ${pid}`);
  });

  it('a restarted manager finds the live process on the address it answers on, even a promoted replica, before any start()', async () => {
    const options = await optionsFor('promoted');
    const first = new SpawnDriver(options);
    const old = track((await first.start()).pid);
    const replica = await first.spawnProcess(first.nextMetricsAddress());
    track(replica.pid);
    expect(replica.metricsAddress).toBe(options.replicaMetricsAddresses?.[0]);
    await waitReady(replica.metricsAddress);
    first.promote(replica);
    await first.stopPid(old, 5_000);

    // A new manager restored with the tunnel running never calls start(): it must still probe the replica's address,
    // and put its next replica on the next address in turn.
    const next = new SpawnDriver(options);
    expect(next.metricsAddress()).toBe(options.replicaMetricsAddresses?.[0]);
    expect(next.nextMetricsAddress()).toBe(options.replicaMetricsAddresses?.[1]);
    expect(await next.current()).toMatchObject({ pid: replica.pid, adopted: true });
    await next.stop(5_000);
  });

  it('a replica left running by a manager killed during a reload is stopped by the next manager', async () => {
    const options = await optionsFor('abandoned');
    const first = new SpawnDriver(options);
    const live = track((await first.start()).pid);
    const replica = await first.spawnProcess(first.nextMetricsAddress());
    track(replica.pid);
    await waitReady(replica.metricsAddress);
    // (the manager dies here: the replica is neither promoted nor stopped)

    const next = new SpawnDriver(options);
    expect(await next.reapAbandoned(5_000)).toEqual([replica.pid]);
    expect(isProcessRunning(replica.pid)).toBe(false);
    expect(isProcessRunning(live)).toBe(true);
    expect(await next.current()).toMatchObject({ pid: live });
    expect(await next.reapAbandoned(5_000)).toEqual([]);
    await next.stop(5_000);
  });

  it('does not adopt a pid that now belongs to another program', async () => {
    const options = await optionsFor('stale');
    const impostor = spawn('sleep', ['30'], { stdio: 'ignore' });
    const impostorPid = track(impostor.pid ?? null);
    writeFileSync(options.pidfile, JSON.stringify({ pid: impostorPid, argv: ['cloudflared', 'tunnel', 'run'], metricsAddress: options.metricsAddress, startedAt: 0 }));
    const driver = new SpawnDriver(options);
    const started = await driver.start();
    track(started.pid);
    expect(started.adopted).toBe(false);
    expect(started.pid).not.toBe(impostorPid);
    expect(isProcessRunning(impostorPid)).toBe(true);
    expect(JSON.parse(readFileSync(options.pidfile, 'utf8')).pid).toBe(started.pid);
    await driver.stop(5_000);
    impostor.kill('SIGKILL');
  });

  it('sends SIGKILL after the grace to a process that ignores SIGTERM', async () => {
    const options = await optionsFor('stubborn', { TM_STANDIN_IGNORE_SIGTERM: '1' });
    const driver = new SpawnDriver(options);
    const started = await driver.start();
    const pid = track(started.pid);
    await waitReady(options.metricsAddress);
    const outcome = await driver.stop(1_000);
    expect(outcome.how).toBe('killed');
    expect(isProcessRunning(pid)).toBe(false);
    expect(readFileSync(driver.logPath, 'utf8')).toContain('ignoring it');
  });

  it('fails with a named error when the command does not exist', async () => {
    const driver = new SpawnDriver({ ...(await optionsFor('missing')), command: [join(dir.path, 'no-such-cloudflared')] });
    await expect(driver.start()).rejects.toMatchObject({ code: 'TUNNEL_START_FAILED', fix: expect.stringContaining('cloudflared.command') });
  });
});
