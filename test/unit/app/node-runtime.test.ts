import { execFileSync, spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { unsupportedRuntime } from '../../../src/node-runtime.ts';
import { BIN, runCli } from '../../helpers/cli.ts';
import { tempDir } from '../../helpers/standin-cloudflared.ts';

/** A `node` on this machine's PATH older than 22.13 (CI and the dev machines have the system's Node 20), if any. */
function olderNode(): string | null {
  let candidates: string[];
  try {
    candidates = execFileSync('sh', ['-c', 'which -a node'], { encoding: 'utf8' }).trim().split('\n');
  } catch {
    return null;
  }
  for (const candidate of candidates) {
    if (realpathSync(candidate) === realpathSync(process.execPath)) continue;
    const version = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (version !== '' && unsupportedRuntime(version) !== null) return candidate;
  }
  return null;
}
const older = olderNode();

describe('the Node.js runtime', () => {
  it('accepts the long-term-support lines the package names (22 from 22.13, 24 and later), refuses the rest with the fix', () => {
    for (const version of ['22.13.0', '22.23.3', '24.0.0', '24.21.0', '26.1.0']) expect(unsupportedRuntime(version), version).toBeNull();
    for (const version of ['20.20.2', '22.12.0', '23.11.1', '18.19.0']) {
      const problem = unsupportedRuntime(version);
      expect(problem, version).toMatchObject({ code: 'RUNTIME_UNSUPPORTED', details: { node: version } });
      expect(problem!.message).toContain(version);
      expect(problem!.fix).toContain('Node.js 24');
    }
  });

  it('this runtime runs the command', async () => {
    expect(unsupportedRuntime()).toBeNull();
    const result = await runCli(['token', 'new']);
    expect(result.code, result.stderr).toBe(0);
  });

  it.skipIf(older === null)(`an older Node (${older ?? 'none on PATH'}) is refused before the database driver loads: exit 1, the error with its fix`, () => {
    // Without the check, `migrate` loads better-sqlite3 13 and Node 20 dies of a segmentation fault (exit 139).
    const dir = tempDir('old-node');
    const result = spawnSync(older!, [BIN, 'migrate', '--data-dir', dir.path], { encoding: 'utf8' });
    dir.remove();
    expect(result.signal).toBeNull();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('RUNTIME_UNSUPPORTED');
    expect(result.stderr).toContain('Node.js 24');
  });
});
