import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/tunnel-manager.js', import.meta.url));

/**
 * The environment of a command a test runs: the stand-in cloudflared in the sandbox unless the test names another
 * (`TM_CLOUDFLARED`), whatever this machine has installed, so a test means the same on every machine.
 */
function commandEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  return { ...process.env, TM_CLOUDFLARED: 'standin', ...env };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `tunnel-manager` command (bin → dist/cli.js, built from the current sources by test/global-setup.ts) and collects its output. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; uid?: number; gid?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: commandEnv(options.env),
      cwd: options.cwd,
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Starts a long-running `tunnel-manager` command (on this Node, or `node`); the caller stops it with a signal. */
export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; node?: string } = {}): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(options.node ?? process.execPath, [BIN, ...args], { env: commandEnv(options.env), cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

export async function waitUntil<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Waits until `serve` (started with startCli) has written `<dataDir>/sandbox.json` naming its own pid; fails if it exits. */
export async function sandboxFileOf<T extends { pid: number }>(cli: { child: ChildProcess; output: () => string }, dataDir: string, timeoutMs = 60_000): Promise<T> {
  const sandboxFile = join(dataDir, 'sandbox.json');
  return waitUntil(
    () => {
      if (cli.child.exitCode !== null) throw new Error(`the manager exited (${cli.child.exitCode}):\n${cli.output().slice(-3000)}`);
      if (!existsSync(sandboxFile)) return undefined;
      const parsed = JSON.parse(readFileSync(sandboxFile, 'utf8')) as T;
      return parsed.pid === cli.child.pid ? parsed : undefined;
    },
    timeoutMs,
    'the manager to write sandbox.json',
  );
}
