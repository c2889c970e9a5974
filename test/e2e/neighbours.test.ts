import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isProcessRunning } from '../../src/cloudflared/process-identity.ts';
import { startCli, waitUntil } from '../helpers/cli.ts';
import { viaEdge } from '../helpers/service.ts';

/**
 * Two sandboxes on one machine, each started as a user would (`tunnel-manager serve`, embedded defaults, every
 * listener on port 0), must never knock each other's tunnel down; and every path a service derives follows the
 * data directory it was given, whatever the working directory.
 */

const root = mkdtempSync(join(tmpdir(), 'tm-neighbours-'));
const running: { stop: () => Promise<void> }[] = [];
afterAll(async () => {
  for (const serve of running.splice(0)) await serve.stop();
  rmSync(root, { recursive: true, force: true });
});

interface Sandbox {
  pid: number;
  dataDir: string;
  edgeUrl: string;
  metrics: [string, ...string[]];
  cloudflaredPid: () => number;
  stop: () => Promise<void>;
}

async function serve(name: string, extraArgs: string[] = [], cwd?: string): Promise<Sandbox> {
  const dataDir = join(root, name);
  const cli = startCli(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0', ...extraArgs], cwd ? { cwd } : {});
  let exited = false;
  void cli.exited.then(() => (exited = true));
  const sandboxFile = join(dataDir, 'sandbox.json');
  const info = await waitUntil(
    () => {
      if (exited) throw new Error(`serve ${name} exited:\n${cli.output().slice(-2000)}`);
      if (!existsSync(sandboxFile)) return undefined;
      const parsed = JSON.parse(readFileSync(sandboxFile, 'utf8')) as { pid: number; edgeUrl: string };
      return parsed.pid === cli.child.pid ? parsed : undefined;
    },
    60_000,
    `${name} to write sandbox.json`,
  );
  await waitUntil(() => cli.output().includes('"msg":"started cloudflared"') || undefined, 60_000, `${name} to start cloudflared`);
  const metrics = JSON.parse(readFileSync(join(dataDir, 'sandbox', 'metrics-addresses.json'), 'utf8')) as [string, ...string[]];
  const sandbox: Sandbox = {
    pid: cli.child.pid as number,
    dataDir,
    edgeUrl: info.edgeUrl,
    metrics,
    cloudflaredPid: () => (JSON.parse(readFileSync(join(dataDir, 'cloudflared', 'cloudflared.pid'), 'utf8')) as { pid: number }).pid,
    stop: async () => {
      if (!exited) cli.child.kill('SIGTERM');
      await cli.exited;
    },
  };
  running.push(sandbox);
  return sandbox;
}

async function ready(address: string): Promise<number> {
  try {
    return (await fetch(`http://${address}/ready`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

describe('two sandboxes on one machine', () => {
  it('each gets its own cloudflared metrics ports, and restarting one leaves the other untouched', async () => {
    const a = await serve('a');
    const b = await serve('b');
    // Six distinct addresses: the three ports each one's replicas take in turn.
    expect(new Set([...a.metrics, ...b.metrics]).size).toBe(6);
    await waitUntil(async () => ((await ready(a.metrics[0])) === 200 && (await ready(b.metrics[0])) === 200) || undefined, 30_000, 'both tunnels ready');
    const bPid = b.cloudflaredPid();

    // Restart a (a clean stop, then a start on the same data directory): b's tunnel never notices.
    await a.stop();
    running.splice(running.indexOf(a), 1);
    const again = await serve('a');
    expect(again.metrics).toEqual(a.metrics);
    await waitUntil(async () => (await ready(again.metrics[0])) === 200 || undefined, 30_000, 'a ready again');
    expect(b.cloudflaredPid()).toBe(bPid);
    expect(isProcessRunning(bPid)).toBe(true);
    expect(await ready(b.metrics[0])).toBe(200);
    // b's public side still serves through b's own tunnel (the seed's hand-written rule answers, not a 530).
    expect((await viaEdge(b.edgeUrl, 'nothing-here.153.se')).status).not.toBe(530);
  });
});

describe('derived paths follow the data directory', () => {
  it('--config with --data-dir puts config.yml and its git repository in the data directory, not the working directory', async () => {
    const cwd = mkdtempSync(join(root, 'cwd-'));
    const config = join(root, 'minimal.yml');
    writeFileSync(config, 'health:\n  probeIntervalSeconds: 5\n');
    const sandbox = await serve('with-config', ['--config', config], cwd);
    expect(existsSync(join(sandbox.dataDir, 'cloudflared', 'config.yml'))).toBe(true);
    expect(existsSync(join(sandbox.dataDir, 'cloudflared', '.git'))).toBe(true);
    expect(existsSync(join(sandbox.dataDir, 'tunnel-manager.db'))).toBe(true);
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });
});
