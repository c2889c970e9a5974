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
