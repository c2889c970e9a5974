import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVE_MALLOC_ENV, SERVE_NODE_FLAGS } from '../../bin/runtime-tuning.js';
import { sandboxFileOf, startCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/standin-cloudflared.ts';

/**
 * `serve` runs Node the way docs/performance.md measured it (Memory with use): the bin re-executes itself with the V8
 * flags and the malloc settings, keeping its pid (systemd's MainPID, the pidfile, sandbox.json), however it is
 * started; TUNNEL_MANAGER_RUNTIME_TUNING=off leaves Node as it was started.
 */
const running: { stop: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const serve of running.splice(0)) await serve.stop();
});

async function serve(env: NodeJS.ProcessEnv = {}): Promise<{ pid: number; argv: string[]; environ: string[] }> {
  const dir = tempDir('serve-runtime');
  const cli = startCli(['serve', '--data-dir', dir.path, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0'], { env });
  running.push({
    stop: async () => {
      cli.child.kill('SIGTERM');
      await cli.exited;
      dir.remove();
    },
  });
  const info = await sandboxFileOf<{ pid: number }>(cli, dir.path);
  const argv = readFileSync(`/proc/${info.pid}/cmdline`, 'utf8').split('\0');
  const environ = readFileSync(`/proc/${info.pid}/environ`, 'utf8').split('\0');
  return { pid: info.pid, argv, environ };
}

describe('the Node that serve runs on', () => {
  it('re-executes itself with the measured flags and malloc settings, same pid', async () => {
    const { pid, argv, environ } = await serve();
    expect(argv.slice(1, 1 + SERVE_NODE_FLAGS.length)).toEqual(SERVE_NODE_FLAGS);
    expect(argv).toContain('serve');
    for (const [key, value] of Object.entries(SERVE_MALLOC_ENV)) expect(environ).toContain(`${key}=${value}`);
    expect(pid).toBeGreaterThan(0);
  }, 90_000);

  it('TUNNEL_MANAGER_RUNTIME_TUNING=off leaves Node as started', async () => {
    const { argv, environ } = await serve({ TUNNEL_MANAGER_RUNTIME_TUNING: 'off' });
    for (const flag of SERVE_NODE_FLAGS) expect(argv).not.toContain(flag);
    expect(environ.some((entry) => entry.startsWith('MALLOC_ARENA_MAX='))).toBe(false);
  }, 90_000);
});
