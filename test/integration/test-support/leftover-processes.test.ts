import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessRunning } from '../../../src/cloudflared/process-identity.ts';
import { abandonedRunDirs, claimRunDir, findLeftovers, mentionsRunDir, pidsInPidfile, stopLeftovers } from '../../helpers/leftover-processes.ts';
import { tempDir } from '../../helpers/standin-cloudflared.ts';

/**
 * The teardown of test/global-setup.ts: what a crashed test worker left running is found by pidfile and stopped,
 * and nothing else is, even when a pidfile names it.
 */
const started: ChildProcess[] = [];
const dirs: { remove: () => void }[] = [];

/** A process that stays up, with `extra` on its command line; resolves once it runs (it says so). */
async function idleProcess(args: string[]): Promise<number> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  started.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', () => resolve());
  });
  return child.pid as number;
}

const IDLE = "process.stdout.write('up\\n'); setInterval(() => {}, 1000)";

afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) dir.remove();
});

describe('leftover processes of a test run', () => {
  it('stops what the pidfiles and command lines of the run directory prove is ours, and nothing else', async () => {
    const run = tempDir('leftovers');
    dirs.push(run);
    const cloudflaredDir = join(run.path, 'tm-service-x', 'cloudflared');
    mkdirSync(cloudflaredDir, { recursive: true });
    const config = join(cloudflaredDir, 'config.yml');
    // The live cloudflared (JSON pidfile), a replica left by a reload (the .others list), one named by a bare pid,
    // a stand-in found by its command line only, and a process a pidfile names that is not ours (a reused pid).
    const live = await idleProcess(['-e', IDLE, 'tunnel', '--config', config, 'run']);
    const replica = await idleProcess(['-e', IDLE, 'tunnel', '--config', config, '--metrics', 'replica']);
    const bare = await idleProcess(['-e', IDLE, 'tunnel', '--config', config, '--bare']);
    const script = join(run.path, 'standin-cloudflared.js');
    writeFileSync(script, IDLE);
    const unlisted = await idleProcess([script, 'tunnel']);
    const foreign = await idleProcess(['-e', IDLE, 'not', 'of', 'this', 'run']);
    writeFileSync(join(cloudflaredDir, 'cloudflared.pid'), JSON.stringify({ pid: live, argv: [], metricsAddress: '127.0.0.1:1' }));
    writeFileSync(join(cloudflaredDir, 'cloudflared.pid.others'), JSON.stringify([{ pid: replica, argv: [] }, { pid: foreign, argv: [] }]));
    const other = join(run.path, 'tm-other', 'cloudflared');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'cloudflared.pid'), `${bare}\n`);

    expect(pidsInPidfile(join(cloudflaredDir, 'cloudflared.pid.others'))).toEqual([replica, foreign]);
    expect(findLeftovers(run.path).map((p) => p.pid).sort()).toEqual([live, replica, bare, unlisted].sort());

    const stopped = await stopLeftovers(run.path, 2_000);
    expect(stopped.map((p) => p.pid).sort()).toEqual([live, replica, bare, unlisted].sort());
    for (const pid of [live, replica, bare, unlisted]) expect(isProcessRunning(pid)).toBe(false);
    expect(isProcessRunning(foreign)).toBe(true);
    expect(findLeftovers(run.path)).toEqual([]);
  });

  it('reads a path inside the run directory as ours, a neighbouring directory with the same prefix not', () => {
    expect(mentionsRunDir(['node', 'x.js', '--config', '/tmp/tm-run-abc/tm-service-1/cloudflared/config.yml'], '/tmp/tm-run-abc')).toBe(true);
    expect(mentionsRunDir(['node', 'x.js', '--data-dir=/tmp/tm-run-abc/d'], '/tmp/tm-run-abc')).toBe(true);
    expect(mentionsRunDir(['node', 'x.js', '--config', '/tmp/tm-run-abcd/config.yml'], '/tmp/tm-run-abc')).toBe(false);
  });

  it("takes a run directory for abandoned only when its owner is gone: a run going on (this one) is never reaped", async () => {
    const base = tempDir('runs');
    dirs.push(base);
    const mine = claimRunDir(base.path);
    const gone = claimRunDir(base.path);
    // A vitest that was killed: its pid now runs something else, or nothing.
    const stranger = await idleProcess(['-e', IDLE, 'a', 'stranger']);
    const owner = JSON.parse(readFileSync(join(gone, 'owner.json'), 'utf8')) as { pid: number; argv: string[] };
    writeFileSync(join(gone, 'owner.json'), JSON.stringify({ ...owner, pid: stranger }));
    mkdirSync(join(base.path, 'tm-run-notours'));
    expect(abandonedRunDirs(base.path)).toEqual([gone]);
    expect(mine.startsWith(join(base.path, 'tm-run-'))).toBe(true);
  });
});
