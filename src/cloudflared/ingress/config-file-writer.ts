/**
 * Atomic replacement of a file: write a temp file in the same directory, fsync it, rename it over the
 * original, fsync the directory. A crash at any point leaves either the old file or the new one, never a
 * mix. The original's mode and owner are kept. Unchanged bytes are not written at all.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, chown, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TunnelManagerError } from '../../errors.ts';
import { errnoCodeOf } from '../../thrown.ts';

export interface AtomicWriteOptions {
  /** Mode for a file that does not exist yet (an existing file keeps its own). Default 0o640. */
  modeForNewFile?: number;
  /** Called after the temp file is written and synced, before the rename (crash tests, tracing). */
  onTempWritten?: (tempPath: string) => void | Promise<void>;
}

export interface AtomicWriteResult {
  /** false when the file already held exactly these bytes (nothing was written). */
  changed: boolean;
  path: string;
  mode: number;
  /** false when the original belonged to another user and we could not give the new file back to them. */
  ownerKept: boolean;
}

const TEMP_MARKER = '.tmp-';

/** The temp file name next to `path`: hidden, and recognisable so a crash's leftovers can be removed. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`);
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCodeOf(error) === 'EPERM';
  }
}

/** Removes temp files a crashed writer left next to `path` (only those whose writer process is gone). */
export async function removeStaleTempFiles(path: string): Promise<string[]> {
  const prefix = `.${basename(path)}${TEMP_MARKER}`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) continue;
    await unlink(join(dirname(path), name)).catch(() => undefined);
    removed.push(join(dirname(path), name));
  }
  return removed;
}

async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY);
  try {
    await handle.sync();
  } catch (error) {
    const code = errnoCodeOf(error);
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw error;
  } finally {
    await handle.close();
  }
}

function writeFailed(path: string, step: string, error: unknown): TunnelManagerError {
  const code = errnoCodeOf(error) ?? 'unknown';
  return new TunnelManagerError({
    code: 'CONFIG_WRITE_FAILED',
    message: `Could not write ${path} (${step} failed: ${code}). The previous file is untouched.`,
    fix:
      code === 'EACCES' || code === 'EPERM'
        ? `Give the tunnel-manager user write access to ${dirname(path)} (it creates a temp file there and renames it over ${basename(path)}).`
        : code === 'ENOSPC'
          ? `Free disk space on the file system holding ${dirname(path)}, then retry.`
          : `Check that ${dirname(path)} exists and is writable, then retry.`,
    details: { path, step, errno: code },
    cause: error,
  });
}

type Original = { mode: number; uid: number; gid: number };

/** The file's mode and owner (null when there is none), and whether it already holds exactly `bytes`. */
async function readOriginal(path: string, bytes: Buffer): Promise<{ original: Original | null; unchanged: boolean }> {
  try {
    const info = await stat(path);
    const original = { mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
    const current = await readFile(path);
    return { original, unchanged: current.equals(bytes) };
  } catch (error) {
    if (errnoCodeOf(error) !== 'ENOENT') throw writeFailed(path, 'reading the current file', error);
    return { original: null, unchanged: false };
  }
}

/** Gives the temp file the original's owner; false when this user may not (EPERM), and the file gets ours. */
async function keepOwner(tempPath: string, original: Original, progress: { step: string }): Promise<boolean> {
  const mine = await stat(tempPath);
  if (mine.uid === original.uid && mine.gid === original.gid) return true;
  progress.step = 'setting the owner';
  try {
    await chown(tempPath, original.uid, original.gid);
    return true;
  } catch (error) {
    if (errnoCodeOf(error) !== 'EPERM') throw error;
    return false;
  }
}

/** Creates the temp file with `bytes`, synced to disk. */
async function writeTemp(tempPath: string, bytes: Buffer, mode: number, progress: { step: string }): Promise<void> {
  const handle = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    progress.step = 'writing the temp file';
    await handle.writeFile(bytes);
    progress.step = 'syncing the temp file';
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `path` with `content` atomically; does nothing when the file already holds exactly `content`. */
export async function writeFileAtomically(path: string, content: string, options: AtomicWriteOptions = {}): Promise<AtomicWriteResult> {
  const bytes = Buffer.from(content, 'utf8');
  const { original, unchanged } = await readOriginal(path, bytes);
  if (original && unchanged) return { changed: false, path, mode: original.mode, ownerKept: true };
  await removeStaleTempFiles(path);

  const mode = original?.mode ?? options.modeForNewFile ?? 0o640;
  const tempPath = tempPathFor(path);
  const progress = { step: 'creating the temp file' };
  let ownerKept = true;
  try {
    await writeTemp(tempPath, bytes, mode, progress);
    progress.step = 'setting the mode';
    await chmod(tempPath, mode);
    if (original) ownerKept = await keepOwner(tempPath, original, progress);
    await options.onTempWritten?.(tempPath);
    progress.step = 'renaming the temp file over the original';
    await rename(tempPath, path);
    progress.step = 'syncing the directory';
    await fsyncDirectory(dirname(path));
  } catch (error) {
    await unlink(tempPath).catch(() => undefined);
    if (error instanceof TunnelManagerError) throw error;
    throw writeFailed(path, progress.step, error);
  }
  return { changed: true, path, mode, ownerKept };
}
