import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveLogFormat } from '../../src/app/config/logger.ts';
import { BIN, startCli, waitUntil } from '../helpers/cli.ts';
import { standinPidsFor } from '../helpers/standin-cloudflared.ts';

/**
 * `serve` at a terminal: readable log lines (pino's pretty printer) instead of JSON, JSON anywhere else; closing
 * the terminal (SIGHUP) stops it as cleanly as SIGTERM; and a stop asked for during start-up is carried out after it. The terminal is a real pseudo-terminal made by `script`.
 */

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tm-terminal-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) {
    // A failed test must not leave its stand-in behind.
    for (const pid of standinPidsFor(join(dir, 'cloudflared', 'config.yml'))) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `serve` under `script`, so its stderr is a terminal; `script` ends when `serve` does. */
function serveOnTerminal(dir: string) {
  const command = `${process.execPath} ${BIN} serve --data-dir ${dir} --listen 127.0.0.1:0 --edge-listen 127.0.0.1:0`;
  // The stand-in, whatever cloudflared this machine has (TM_CLOUDFLARED may name the real one).
  const child = spawn('script', ['-qefc', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TM_CLOUDFLARED: 'standin' } });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('log format', () => {
  it('auto is pretty on a terminal and JSON elsewhere; json and pretty are taken as said', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });

  it('on a terminal, serve logs readable lines; closing the terminal (SIGHUP) stops it and its stand-in', async () => {
    const dir = dataDir();
    const run = serveOnTerminal(dir);
    await waitUntil(() => run.output().includes('started cloudflared') || undefined, 60_000, 'serve to start cloudflared');
    const lines = run.output().split(/\r?\n/).filter((line) => line.includes('tunnel-manager starting'));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*: .*tunnel-manager starting/);
    expect(run.output()).not.toContain('{"level":');
    const configPath = join(dir, 'cloudflared', 'config.yml');
    expect(standinPidsFor(configPath).length).toBeGreaterThan(0);
    const pidfile = join(dir, 'tunnel-manager.pid');
    const pid = Number(await waitUntil(() => (existsSync(pidfile) ? readFileSync(pidfile, 'utf8') : undefined), 30_000, 'the pidfile'));
    // On a terminal the sandbox's demo tokens are printed (elsewhere only sandbox.json holds them: test/e2e/cli.test.ts).
    const tokens = (JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as { tokens: Record<string, string> }).tokens;
    await waitUntil(() => run.output().includes('MCP bearer tokens:') || undefined, 10_000, 'the banner');
    expect(run.output()).toContain(tokens.consilio);

    process.kill(pid, 'SIGHUP');
    await run.exited;
    await waitUntil(() => standinPidsFor(configPath).length === 0 || undefined, 20_000, 'the stand-in to stop');
    expect(existsSync(join(dir, 'tunnel-manager.pid'))).toBe(false);
  }, 90_000);

  it('a stop asked for while serve still boots is carried out once it has started: cloudflared is not left behind', async () => {
    const dir = dataDir();
    const cli = startCli(['serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
    // The moment cloudflared is spawned, the service is still starting (no pidfile, no banner yet).
    await waitUntil(() => cli.output().includes('"msg":"started cloudflared (detached)"') || undefined, 60_000, 'serve to spawn cloudflared');
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    // Usually still starting ("stop asked for during start-up"); on a slow machine start-up may have ended first.
    expect(cli.output()).toMatch(/stop asked for during start-up|"msg":"shutting down"/);
    expect(standinPidsFor(join(dir, 'cloudflared', 'config.yml'))).toEqual([]);
  }, 90_000);

  it('without a terminal, serve logs JSON lines', async () => {
    const dir = dataDir();
    const cli = startCli(['serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
    await waitUntil(() => cli.output().includes('"msg":"started cloudflared"') || undefined, 60_000, 'serve to start cloudflared');
    const first = cli.output().split('\n').find((line) => line.includes('tunnel-manager starting'));
    expect(JSON.parse(first!)).toMatchObject({ level: 30, msg: 'tunnel-manager starting' });
    cli.child.kill('SIGTERM');
    await cli.exited;
  }, 90_000);
});
