import type Dockerode from 'dockerode';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * The real cloudflared for the tests that need it: `$TM_CLOUDFLARED` (a path), else `cloudflared` on `$PATH`.
 * Without one those tests are skipped with a notice; with CI set they fail (`.ci/run` installs the binary).
 */
function find(): string | null {
  const fromEnv = process.env.TM_CLOUDFLARED?.trim();
  if (fromEnv && fromEnv !== 'standin') return fromEnv;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'cloudflared'), constants.X_OK);
      return join(dir, 'cloudflared');
    } catch {
      // not here
    }
  }
  return null;
}

export const REAL_CLOUDFLARED: string | null = find();

/**
 * The binary, or null after saying why the file is skipped. With CI set a missing binary throws: the suite fails
 * instead of skipping silently.
 */
export function realCloudflaredForTests(what: string): string | null {
  if (REAL_CLOUDFLARED !== null) return REAL_CLOUDFLARED;
  const why = 'no real cloudflared (set TM_CLOUDFLARED=/path/to/cloudflared or put cloudflared on PATH)';
  if (process.env.CI) throw new Error(`${what}: ${why}. CI must run these tests on the real binary: .ci/run installs it.`);
  console.warn(`\n[real cloudflared tests] SKIPPING ${what}: ${why}; with CI set they fail instead.\n`);
  return null;
}

export const REAL_CLOUDFLARED_IMAGE = 'local/tm-cloudflared:test';

/**
 * An image that runs the real cloudflared (a static binary) in a container, made from this machine's binary (no
 * registry is reachable): the binary, /etc/passwd and /tmp. Rebuilt once per test process. Run it as
 * `cloudflared tunnel …`.
 */
export async function buildRealCloudflaredImage(docker: Dockerode, binary: string): Promise<string> {
  const { mkdtemp, mkdir, copyFile, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { spawn } = await import('node:child_process');
  const root = await mkdtemp(join(tmpdir(), 'tm-cloudflared-image-'));
  try {
    await mkdir(join(root, 'usr/local/bin'), { recursive: true });
    await copyFile(binary, join(root, 'usr/local/bin/cloudflared'));
    await mkdir(join(root, 'etc'));
    await mkdir(join(root, 'tmp'));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/false\n');
    await writeFile(join(root, 'etc', 'nsswitch.conf'), 'hosts: files dns\n');
    const [repo, tag] = REAL_CLOUDFLARED_IMAGE.split(':') as [string, string];
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const progress = await docker.importImage(tar.stdout, { repo, tag, changes: 'ENV PATH=/usr/local/bin' });
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(progress, (error: Error | null) => (error ? reject(error) : resolve())));
    return REAL_CLOUDFLARED_IMAGE;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
