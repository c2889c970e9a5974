import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/package-root.ts';
import { waitUntil } from '../helpers/cli.ts';

/**
 * What the deployment tests share: the images (.ci/deploy-images, made from Debian's packages and the npm registry),
 * Docker commands on the containers they label, and the documented steps they run as written.
 */

/** Every container, volume and image the deployment tests make carries this label, and is removed after. */
export const DEPLOY_TEST_LABEL = 'tunnel-manager-ci=test';

export interface DeployImages {
  /** debian:bookworm-slim, made locally. */
  slim: string;
  /** node:24-bookworm-slim, made locally: what deploy/Dockerfile builds on. */
  node: string;
  /** A bookworm host with systemd as PID 1 and Node 24 at /usr/bin/node. */
  systemd: string;
}

/**
 * Makes (or finds, cached) the images. They need root (debootstrap) and a Docker engine: without them, with CI set
 * the test fails (CI must run it); elsewhere it is skipped with a notice that says what is missing.
 */
export function deployImages(what: string): DeployImages | null {
  const missing =
    process.getuid?.() !== 0
      ? 'not running as root (debootstrap builds the Debian root file systems)'
      : spawnSync('docker', ['info'], { encoding: 'utf8' }).status !== 0
        ? 'no Docker engine answers (bash .ci/docker-up starts one)'
        : null;
  if (missing === null) {
    const made = spawnSync('bash', [join(PACKAGE_ROOT, '.ci', 'deploy-images')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (made.status !== 0) throw new Error(`${what}: .ci/deploy-images failed (exit ${made.status}); its output is above`);
    const images = Object.fromEntries(made.stdout.trim().split('\n').map((line) => line.split(' ') as [string, string]));
    return { slim: images.slim as string, node: images.node as string, systemd: images.systemd as string };
  }
  if (process.env.CI) throw new Error(`${what}: ${missing}. CI runs it as root with a Docker engine (.ci/run).`);
  console.warn(`\n[deploy tests] SKIPPING ${what}: ${missing}. With CI set it fails instead.\n`);
  return null;
}

/** `docker ARGS`, its output; throws with both streams when it fails. */
export function docker(args: string[], options: { input?: string; allowFailure?: boolean; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  const result = spawnSync('docker', args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: options.timeoutMs ?? 600_000,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
  if (!options.allowFailure && result.status !== 0) {
    throw new Error(`docker ${args.join(' ').slice(0, 300)} exited ${result.status}${result.error ? ` (${result.error.message})` : ''}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
  }
  return result;
}

/** A bash script run inside CONTAINER (copied in, so that no command of it can read the rest of it from stdin). */
export function execScript(container: string, script: string, options: { allowFailure?: boolean; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  const name = `/root/.deploy-test-${process.pid}-${Date.now()}.sh`;
  docker(['exec', '-i', container, 'sh', '-c', `cat > ${name}`], { input: script });
  return docker(['exec', container, 'bash', name], options);
}

/** A block of docs/operations.md marked `<!-- deploy-test -->` (a shell block) or `<!-- deploy-test: file NAME -->`. */
export interface MarkedBlock {
  kind: 'run' | 'file';
  /** The file a `file` block is written to. */
  file?: string;
  body: string;
  /** 1-based line of the block's first line in the document, for messages. */
  line: number;
}

/** The marked fenced blocks of a Markdown document, in order. A marker must be followed by a fence. */
export function markedBlocks(markdown: string): MarkedBlock[] {
  const lines = markdown.split('\n');
  const blocks: MarkedBlock[] = [];
  lines.forEach((text, index) => {
    const marker = /^<!-- deploy-test(?:: file (\S+))? -->$/.exec(text.trim());
    if (!marker) return;
    const fence = lines[index + 1] ?? '';
    if (!/^```\w*$/.test(fence)) throw new Error(`docs marker on line ${index + 1} is not followed by a fenced block`);
    const end = lines.findIndex((candidate, at) => at > index + 1 && candidate === '```');
    if (end < 0) throw new Error(`the block after line ${index + 1} is not closed`);
    blocks.push({
      kind: marker[1] === undefined ? 'run' : 'file',
      ...(marker[1] === undefined ? {} : { file: marker[1] }),
      body: lines.slice(index + 2, end).join('\n'),
      line: index + 3,
    });
  });
  return blocks;
}

/** The blocks as one shell script: shell blocks as written, file blocks written with a quoted here-document. */
export function asScript(blocks: MarkedBlock[]): string {
  return blocks
    .map((block) =>
      block.kind === 'run'
        ? `# docs/operations.md, line ${block.line}\n${block.body}`
        : `# docs/operations.md, line ${block.line}: ${block.file}\ncat > ${block.file} <<'DEPLOY_TEST_EOF'\n${block.body}\nDEPLOY_TEST_EOF`,
    )
    .join('\n\n');
}

/**
 * The working tree as a git repository of one commit (tracked files and new ones not ignored, as they are now),
 * for `git clone` in a container: what is tested is what is checked out here, committed or not.
 */
export function workingTreeRepository(): { path: string; remove: () => void } {
  const listed = spawnSync('git', ['-C', PACKAGE_ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  const root = mkdtempSync(join(tmpdir(), 'tm-deploy-repo-'));
  const path = join(root, 'tunnel-manager');
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    try {
      mkdirSync(dirname(join(path, file)), { recursive: true });
      cpSync(join(PACKAGE_ROOT, file), join(path, file), { verbatimSymlinks: true });
    } catch (error) {
      // A file deleted in the working tree but still tracked: it is not part of what is tested.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  const git = (...args: string[]) => {
    const result = spawnSync('git', ['-C', path, '-c', 'user.name=deploy test', '-c', 'user.email=deploy-test@localhost', ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  };
  git('init', '--quiet');
  git('add', '--all');
  git('commit', '--quiet', '--no-verify', '-m', 'the working tree under test');
  return { path, remove: () => rmSync(root, { recursive: true, force: true }) };
}

export const OPERATIONS_DOC = join(PACKAGE_ROOT, 'docs', 'operations.md');
export const readOperationsDoc = (): string => readFileSync(OPERATIONS_DOC, 'utf8');

/** Polls CHECK (every 250 ms: each one runs docker or systemctl) until it returns a value; throws after TIMEOUTMS saying WHAT. */
export function waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
  return waitUntil(check, timeoutMs, what, 250);
}
