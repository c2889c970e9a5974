import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/package-root.ts';
import { startCli, waitUntil } from '../helpers/cli.ts';

/**
 * The shipped systemd unit: systemd's own checker accepts it, its security exposure stays under 4, and the service
 * speaks Type=notify (READY once it serves, STOPPING on SIGTERM) through `systemd-notify`, here a stand-in program
 * on PATH that writes down what it was asked to send.
 */

const UNIT = join(PACKAGE_ROOT, 'deploy', 'tunnel-manager.service');
const dir = mkdtempSync(join(tmpdir(), 'tm-systemd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('deploy/tunnel-manager.service', () => {
  it('passes systemd-analyze verify', () => {
    const result = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(result.error, 'systemd-analyze is installed (.ci/run installs systemd)').toBeUndefined();
    expect(result.status, `${result.stdout}${result.stderr}`).toBe(0);
  });

  it('scores under 4 on systemd-analyze security', () => {
    const result = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for tunnel-manager\.service: ([\d.]+)/.exec(result.stdout)?.[1]);
    expect(score, result.stdout.slice(-500)).toBeLessThan(4);
  });

  it('runs as its own user with a state directory, the token as a credential, and cloudflared left running on restart', () => {
    const unit = readFileSync(UNIT, 'utf8');
    expect(unit).toMatch(/^User=tunnel-manager$/m);
    expect(unit).toMatch(/^StateDirectory=tunnel-manager$/m);
    expect(unit).toMatch(/^LoadCredential=cloudflare_api_token:/m);
    expect(unit).toMatch(/^KillMode=process$/m);
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^Type=notify$/m);
  });
});

describe('Type=notify', () => {
  it('serve tells systemd READY=1 once the tunnel serves, and STOPPING=1 on SIGTERM', async () => {
    const bin = join(dir, 'bin');
    const record = join(dir, 'notified.txt');
    spawnSync('mkdir', ['-p', bin]);
    writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> ${record}\n`);
    chmodSync(join(bin, 'systemd-notify'), 0o755);
    const data = join(dir, 'data');
    const cli = startCli(['serve', '--data-dir', data, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0'], {
      env: { NOTIFY_SOCKET: '/run/systemd/notify-test', PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    // The stand-in's `>>` creates the file before it writes the line: wait for the line, not the file.
    const ready = await waitUntil(() => (existsSync(record) && readFileSync(record, 'utf8').includes('READY=1') ? readFileSync(record, 'utf8') : undefined), 60_000, 'READY=1');
    expect(ready).toContain('/run/systemd/notify-test');
    expect(ready).toMatch(new RegExp(`--pid=${cli.child.pid} READY=1 STATUS=serving: tunnel running`));
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(readFileSync(record, 'utf8')).toContain('STOPPING=1');
  }, 90_000);
});
