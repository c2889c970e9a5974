import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isProcessRunning, readProcessArgv } from '../../../src/cloudflared/process-identity.ts';
import type { ProcessExit } from '../../../src/cloudflared/process-driver.ts';
import { SystemdDriver } from '../../../src/cloudflared/drivers/systemd-driver.ts';
import { buildTunnelArgv } from '../../../src/cloudflared/tunnel-command.ts';
import { REPO_ROOT, STANDIN_COMMAND, TUNNEL_ID, freePort, tempDir, waitFor, waitReady, writeTunnelConfig } from '../../helpers/standin-cloudflared.ts';

/** A stand-in `systemctl` (no systemd runs here), put first on PATH for the driver. */
const FAKE_BIN = fileURLToPath(new URL('./fixtures/fake-systemd-bin', import.meta.url));
const dir = tempDir('systemd-driver');
const units: SystemdDriver[] = [];

afterEach(async () => {
  for (const driver of units.splice(0)) await driver.stop(500);
});
afterAll(() => dir.remove());

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Writes a unit whose ExecStart runs the stand-in (the built stand-in), and a driver for it. */
async function unit(name: string, env: Record<string, string> = {}, timeoutStopSeconds = 30): Promise<{ driver: SystemdDriver; metrics: string }> {
  const metrics = `127.0.0.1:${await freePort()}`;
  const config = writeTunnelConfig(join(dir.path, `${name}.yml`), [{ service: 'http_status:404' }]);
  const argv = buildTunnelArgv({ command: STANDIN_COMMAND, configPath: config, metricsAddress: metrics, tunnelId: TUNNEL_ID });
  const assignments = Object.entries({ TM_STANDIN_EDGE: '', ...env }).map(([key, value]) => `${key}=${shellQuote(value)}`);
  writeFileSync(join(dir.path, `${name}.service.exec`), `env -C ${shellQuote(REPO_ROOT)} ${assignments.join(' ')} ${argv.map(shellQuote).join(' ')}`);
  const driver = new SystemdDriver({
    unit: `${name}.service`,
    env: {
      ...process.env,
      PATH: `${FAKE_BIN}:${process.env.PATH ?? ''}`,
      FAKE_SYSTEMD_DIR: dir.path,
      FAKE_SYSTEMD_TIMEOUT_STOP: String(timeoutStopSeconds),
    },
  });
  units.push(driver);
  return { driver, metrics };
}

describe('systemd driver against a stand-in systemctl on PATH', () => {
  it('starts the unit, finds its main pid, adopts it when already active, and stops it', async () => {
    const { driver, metrics } = await unit('tunnel-a');
    expect(await driver.current()).toBeNull();
    const started = await driver.start();
    expect(started).toMatchObject({ adopted: false, handle: 'tunnel-a.service' });
    const pid = started.pid!;
    expect(readProcessArgv(pid)).toContain('tunnel');
    await waitReady(metrics);
    expect(await driver.start()).toMatchObject({ pid, adopted: true });
    expect(await driver.current()).toMatchObject({ pid });
    expect((await driver.state()).activeState).toBe('active');

    expect((await driver.stop(5_000)).how).toBe('graceful');
    expect(isProcessRunning(pid)).toBe(false);
    expect(await driver.current()).toBeNull();
    expect((await driver.stop(5_000)).how).toBe('not-running');
  });

  it('notices a crash and reports the exit code systemd recorded', async () => {
    const { driver } = await unit('tunnel-crash', { TM_STANDIN_EXIT_AFTER: '0.8' });
    const started = await driver.start();
    const exit = await new Promise<ProcessExit>((resolve) => driver.watch(started, resolve));
    expect(exit.code).toBe(1);
    expect(exit.reason).toContain('exited with code 1');
    expect((await driver.state()).activeState).toBe('failed');
  });

  it('kills a unit that ignores SIGTERM once the grace is over', async () => {
    const { driver, metrics } = await unit('tunnel-stubborn', { TM_STANDIN_IGNORE_SIGTERM: '1' }, 60);
    const { pid } = await driver.start();
    await waitReady(metrics);
    const outcome = await driver.stop(1_000);
    expect(outcome.how).toBe('killed');
    await waitFor(() => !isProcessRunning(pid!), 2000, 'the stubborn process to be gone');
    expect(readFileSync(join(dir.path, 'tunnel-stubborn.service.log'), 'utf8')).toContain('ignoring it');
  });

  it('restarts the unit with a new main pid', async () => {
    const { driver, metrics } = await unit('tunnel-restart');
    const first = await driver.start();
    await waitReady(metrics);
    const second = await driver.restart();
    expect(second.pid).not.toBe(first.pid);
    expect(isProcessRunning(first.pid!)).toBe(false);
  });

  it('names the unit and the next command when systemctl fails', async () => {
    const driver = new SystemdDriver({ unit: 'missing.service', env: { ...process.env, PATH: `${FAKE_BIN}:${process.env.PATH ?? ''}`, FAKE_SYSTEMD_DIR: dir.path } });
    await expect(driver.start()).rejects.toMatchObject({
      code: 'TUNNEL_START_FAILED',
      message: expect.stringContaining('Unit missing.service not found.'),
      fix: expect.stringContaining('journalctl -u missing.service'),
    });
  });

  it('says to choose another driver when there is no systemctl at all', async () => {
    const driver = new SystemdDriver({ unit: 'x.service', env: { PATH: dir.path } });
    await expect(driver.start()).rejects.toMatchObject({ code: 'TUNNEL_START_FAILED', fix: expect.stringContaining('cloudflared.driver "spawn"') });
  });
});
