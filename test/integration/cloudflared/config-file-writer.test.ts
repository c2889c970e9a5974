import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomically } from '../../../src/cloudflared/ingress/config-file-writer.ts';

const CRASH_WRITER = new URL('./fixtures/crash-writer.ts', import.meta.url).pathname;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tm-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the crash writer until it has written its temp file, then SIGKILLs it (by its pid). */
async function crashBetweenTempWriteAndRename(path: string, content: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', CRASH_WRITER, path, content], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const tempPath = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /TEMP (.+)\n/.exec(stdout);
      if (match?.[1]) resolve(match[1]);
    });
    child.on('exit', () => reject(new Error(`crash writer exited early: ${stderr}`)));
  });
  process.kill(child.pid as number, 'SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return tempPath;
}

describe('writeFileAtomically (real files)', () => {
  it('a crash between the temp write and the rename leaves the old file intact; the next write cleans up', async () => {
    const path = join(dir, 'config.yml');
    await writeFile(path, 'old: true\n');
    const tempPath = await crashBetweenTempWriteAndRename(path, 'new: true\n');
    expect(await readFile(path, 'utf8')).toBe('old: true\n');
    expect(await readFile(tempPath, 'utf8')).toBe('new: true\n');

    const result = await writeFileAtomically(path, 'newer: true\n');
    expect(result.changed).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('newer: true\n');
    expect(existsSync(tempPath)).toBe(false);
    expect(await readdir(dir)).toEqual(['config.yml']);
  });

  it("keeps the original's mode and owner", async () => {
    const path = join(dir, 'config.yml');
    await writeFile(path, 'a: 1\n');
    await chmod(path, 0o604);
    // As root, hand the file to another user first, so keeping the owner is really exercised.
    if (process.getuid?.() === 0) await chown(path, 4321, 4322);
    const before = await stat(path);
    const result = await writeFileAtomically(path, 'a: 2\n');
    const after = await stat(path);
    expect(result).toMatchObject({ changed: true, mode: 0o604, ownerKept: true });
    expect(after.mode & 0o7777).toBe(0o604);
    expect([after.uid, after.gid]).toEqual([before.uid, before.gid]);
    if (process.getuid?.() === 0) expect([after.uid, after.gid]).toEqual([4321, 4322]);
    expect(after.ino).not.toBe(before.ino);
  });

  it('does not touch a file that already holds the same bytes', async () => {
    const path = join(dir, 'config.yml');
    await writeFile(path, 'same: 1\n');
    const before = await stat(path);
    const result = await writeFileAtomically(path, 'same: 1\n');
    const after = await stat(path);
    expect(result.changed).toBe(false);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('creates a missing file with the mode for new files', async () => {
    const path = join(dir, 'fresh.yml');
    await writeFileAtomically(path, 'x: 1\n', { modeForNewFile: 0o600 });
    expect((await stat(path)).mode & 0o7777).toBe(0o600);
  });

  it('fails with a fix and leaves the old file when the directory is not writable', async () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions: make the rename fail instead by pointing at a directory.
      const error = await writeFileAtomically(dir, 'x: 1\n').catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'CONFIG_WRITE_FAILED' });
      return;
    }
    const path = join(dir, 'config.yml');
    await writeFile(path, 'old: 1\n');
    await chmod(dir, 0o500);
    try {
      const error = await writeFileAtomically(path, 'new: 1\n').catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'CONFIG_WRITE_FAILED' });
      expect((error as { fix: string }).fix).toContain('write access');
      expect(await readFile(path, 'utf8')).toBe('old: 1\n');
    } finally {
      await chmod(dir, 0o700);
    }
  });
});
