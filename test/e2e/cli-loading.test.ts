import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/package-root.ts';
import { BIN } from '../helpers/cli.ts';
import { tempDir } from '../helpers/standin-cloudflared.ts';

/**
 * The command loads per command (ADR 0004): the short commands must not pay for the Cloudflare SDK, dockerode, the
 * sandbox or the service. Each command runs as the user runs it (the built bin) with a loader hook that records
 * every module it loads; esbuild's metafile says which sources each built chunk holds.
 */
const PRELOAD = fileURLToPath(new URL('./fixtures/record-loads.mjs', import.meta.url));
const FORBIDDEN = [
  // `(^|/)`: node_modules may sit elsewhere (a linked one shows as ../other/node_modules/… in the metafile).
  { name: 'the Cloudflare SDK', test: (input: string) => /(^|\/)node_modules\/cloudflare\//.test(input) },
  { name: 'dockerode', test: (input: string) => /(^|\/)node_modules\/(dockerode|docker-modem)\//.test(input) },
  { name: 'the sandbox', test: (input: string) => input.startsWith('src/sandbox/') },
  { name: 'the composition root', test: (input: string) => input.startsWith('src/root/') },
];

interface Metafile {
  outputs: Record<string, { inputs: Record<string, unknown> }>;
}

const dir = tempDir('cli-loading');
afterAll(() => dir.remove());

/** The sources a command loaded, read through the metafile from the built files it loaded. */
function sourcesLoadedBy(args: string[]): { sources: string[]; files: string[]; status: number | null; output: string } {
  const meta = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'dist', 'meta.json'), 'utf8')) as Metafile;
  const record = join(dir.path, `loads-${args.join('-').replace(/[^a-z0-9-]/gi, '_')}.txt`);
  rmSync(record, { force: true });
  const run = spawnSync(process.execPath, ['--import', PRELOAD, BIN, ...args], {
    env: { ...process.env, TM_RECORD_LOADS: record },
    encoding: 'utf8',
    input: '',
  });
  const files = readFileSync(record, 'utf8')
    .split('\n')
    .filter((url) => url.startsWith('file:'))
    .map((url) => relative(PACKAGE_ROOT, fileURLToPath(url)));
  const sources = files.flatMap((file) => Object.keys(meta.outputs[file]?.inputs ?? (file.startsWith('dist/') ? {} : { [file]: true })));
  return { sources, files, status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('each short command loads only what it needs', () => {
  const dataDir = join(dir.path, 'data');
  const commands: { args: string[]; expectStatus: (status: number | null) => boolean }[] = [
    { args: ['--help'], expectStatus: (status) => status === 0 },
    { args: ['token', 'new'], expectStatus: (status) => status === 0 },
    { args: ['status', '--data-dir', dataDir], expectStatus: (status) => status !== null },
    { args: ['inspect', '--data-dir', dataDir], expectStatus: (status) => status !== null },
    { args: ['config', 'history', '--data-dir', dataDir], expectStatus: (status) => status !== null },
    // Nothing listens on port 1: the call fails after loading everything a call needs.
    { args: ['call', 'tunnel_get_status', '--url', 'http://127.0.0.1:1/mcp', '--token', 'tmk_x', '--data-dir', dataDir], expectStatus: (status) => status === 1 },
  ];

  it.each(commands)('tunnel-manager $args.0 $args.1', ({ args, expectStatus }) => {
    const { sources, files, status, output } = sourcesLoadedBy(args);
    expect(expectStatus(status), output).toBe(true);
    // It really ran the built command (so the check below looked at something).
    expect(files).toContain('dist/cli.js');
    expect(sources).toContain('src/cli.ts');
    for (const forbidden of FORBIDDEN) {
      expect(sources.filter(forbidden.test), `${args.join(' ')} loaded ${forbidden.name}`).toEqual([]);
    }
  });

  it('serve does load the composition root (the check can tell)', () => {
    const meta = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'dist', 'meta.json'), 'utf8')) as Metafile;
    const all = Object.values(meta.outputs).flatMap((output) => Object.keys(output.inputs));
    for (const forbidden of FORBIDDEN) expect(all.some(forbidden.test), forbidden.name).toBe(true);
  });

  it('the stand-in cloudflared is its own small program: none of the manager', () => {
    const { sources, status, output } = sourcesLoadedBy(['sandbox-cloudflared', '--version']);
    expect(status, output).not.toBeNull();
    const standin = spawnSync(process.execPath, ['--import', PRELOAD, join(PACKAGE_ROOT, 'dist', 'standin-cloudflared.js'), '--version'], {
      env: { ...process.env, TM_RECORD_LOADS: join(dir.path, 'standin.txt') },
      encoding: 'utf8',
    });
    expect(standin.status, `${standin.stdout}${standin.stderr}`).toBe(0);
    const meta = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'dist', 'meta.json'), 'utf8')) as Metafile;
    const loaded = readFileSync(join(dir.path, 'standin.txt'), 'utf8')
      .split('\n')
      .filter((url) => url.startsWith('file:'))
      .flatMap((url) => Object.keys(meta.outputs[relative(PACKAGE_ROOT, fileURLToPath(url))]?.inputs ?? {}));
    expect(loaded).toContain('src/sandbox/standin-cloudflared/main.ts');
    const manager = loaded.filter((input) => /^src\/(app|mcp|store|cloudflare|docker)\//.test(input) || /(^|\/)node_modules\/(cloudflare|dockerode|xstate|@modelcontextprotocol)\//.test(input));
    expect(manager).toEqual([]);
    expect(sources).toContain('src/cli.ts');
  });
});
