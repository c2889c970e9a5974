import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DockerDriver, MANAGED_LABEL } from '../../../src/cloudflared/drivers/docker-driver.ts';
import type { ProcessExit } from '../../../src/cloudflared/process-driver.ts';
import { tempDir } from '../../helpers/standin-cloudflared.ts';

/**
 * Against the real Docker engine. No registry is reachable, so the image is built from the host's static
 * busybox with `docker import`; the "cloudflared" in the container is a busybox shell loop that behaves like
 * one on signals. Everything created carries TEST_LABEL and is removed afterwards.
 */
const run = promisify(execFile);
const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
const TEST_LABEL = 'tunnel-manager.test';
const suffix = `${process.pid}-${Date.now()}`;
// This run's own label value and image: another copy of the suite beside this one removes only its own.
const TEST_LABEL_VALUE = `cloudflared-docker-driver-${suffix}`;
const IMAGE = `local/tm-cloudflared-driver-test:${suffix}`;
const POLITE = ['/bin/sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done'];
const STUBBORN = ['/bin/sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'];
const CRASHING = ['/bin/sh', '-c', 'sleep 0.5; exit 3'];
const dir = tempDir('docker-driver');

async function removeTestContainers(): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${TEST_LABEL_VALUE}`] } });
  for (const container of containers) await docker.getContainer(container.Id).remove({ force: true });
}

beforeAll(async () => {
  const rootfs = join(dir.path, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  await run('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
  for (const applet of ['sh', 'sleep']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  await run('sh', ['-c', `tar -C '${rootfs}' -c . | docker import -c 'LABEL ${TEST_LABEL}=${TEST_LABEL_VALUE}' - ${IMAGE}`]);
}, 60_000);

afterEach(removeTestContainers);

afterAll(async () => {
  await removeTestContainers();
  await docker.getImage(IMAGE).remove({ force: true }).catch(() => undefined);
  dir.remove();
});

function driverFor(name: string, cmd: string[] | null): DockerDriver {
  return new DockerDriver({
    docker,
    containerName: `tm-test-cloudflared-${name}-${suffix}`,
    ...(cmd === null ? {} : { create: { image: IMAGE, cmd, networkMode: 'none', labels: { [TEST_LABEL]: TEST_LABEL_VALUE } } }),
  });
}

describe('docker driver against the real engine', () => {
  it('creates and starts the container, adopts it when running, and stops it gracefully', async () => {
    const driver = driverFor('basic', POLITE);
    expect(await driver.current()).toBeNull();
    const started = await driver.start();
    expect(started.adopted).toBe(false);
    expect(started.pid).toBeGreaterThan(0);
    const info = await driver.inspect();
    expect(info?.Config.Labels).toMatchObject({ [MANAGED_LABEL]: 'true', [TEST_LABEL]: TEST_LABEL_VALUE });

    expect(await driver.start()).toMatchObject({ pid: started.pid, adopted: true });
    expect(await driver.current()).toMatchObject({ pid: started.pid });

    const outcome = await driver.stop(5_000);
    expect(outcome.how).toBe('graceful');
    expect((await driver.inspect())?.State.Running).toBe(false);
    expect((await driver.stop(5_000)).how).toBe('not-running');

    // A stopped container is started again, not created again.
    const again = await driver.start();
    expect(again.adopted).toBe(false);
    expect((await driver.inspect())?.Id).toBe(info?.Id);
  });

  it('sees the container die at once through a held wait request', async () => {
    const driver = driverFor('crash', CRASHING);
    const started = await driver.start();
    const exit = await new Promise<ProcessExit>((resolve) => driver.watch(started, resolve));
    expect(exit.code).toBe(3);
    expect(exit.reason).toContain('exited with code 3');
  });

  it('SIGKILLs a container that ignores SIGTERM after the grace', async () => {
    const driver = driverFor('stubborn', STUBBORN);
    await driver.start();
    const outcome = await driver.stop(1_000);
    expect(outcome.how).toBe('killed');
    expect((await driver.inspect())?.State.ExitCode).toBe(137);
  });

  it('restarts the container in place with a new pid', async () => {
    const driver = driverFor('restart', POLITE);
    const first = await driver.start();
    const second = await driver.restart(2_000);
    expect(second.pid).toBeGreaterThan(0);
    expect(second.pid).not.toBe(first.pid);
  });

  it('stops watching when asked, without reporting an exit', async () => {
    const driver = driverFor('unwatch', POLITE);
    const started = await driver.start();
    let reported = false;
    const unwatch = driver.watch(started, () => (reported = true));
    unwatch();
    await driver.stop(2_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(reported).toBe(false);
  });

  it('says how to create the container when it does not exist and no create spec is given', async () => {
    const driver = driverFor('absent', null);
    await expect(driver.start()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND', fix: expect.stringContaining('docker run -d --name tm-test-cloudflared-absent') });
  });
});
