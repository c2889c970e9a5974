import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_METRICS_LISTEN } from '../../../src/app/config/config.ts';
import { startHealthServer, type HealthServer } from '../../../src/app/operations/health-server.ts';

/**
 * deploy/Dockerfile is built and run in the deployment tests (test/deploy/image.test.ts, minutes); these are the
 * checks that take a second, in every run of the suite: every file it copies from the checkout exists and is not left
 * out by .dockerignore, the entry point it runs exists and loads what the build produces, the runtime packages it
 * copies run the commands, the data directory it serves is its volume, and its health check (the very command, run
 * here) passes against the manager's real health listener and fails without one.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCKERFILE = join(ROOT, 'deploy', 'Dockerfile');

interface Instruction {
  keyword: string;
  args: string;
  stage: number;
}

/** The instructions, continuation lines joined, comments dropped, each with the index of its build stage. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    const [keyword = '', ...rest] = full.split(/\s+/);
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') stage += 1;
    instructions.push({ keyword: upper, args: rest.join(' '), stage });
  }
  return instructions;
}

const instructions = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const last = Math.max(...instructions.map((instruction) => instruction.stage));
const runtime = instructions.filter((instruction) => instruction.stage === last);
const one = (keyword: string, within = runtime): Instruction => {
  const found = within.filter((instruction) => instruction.keyword === keyword);
  expect(found, `one ${keyword} in the runtime stage`).toHaveLength(1);
  return found[0]!;
};
const jsonArgs = (instruction: Instruction): string[] => JSON.parse(instruction.args) as string[];
const envOf = (name: string): string | undefined => {
  for (const instruction of runtime.filter((entry) => entry.keyword === 'ENV')) {
    const match = new RegExp(`(?:^|\\s)${name}=(\\S+)`).exec(instruction.args);
    if (match) return match[1];
  }
  return undefined;
};

/** COPY sources and destination, without flags. */
function copyParts(instruction: Instruction): { from: string | null; sources: string[]; destination: string } {
  const words = instruction.args.split(/\s+/);
  const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length) ?? null;
  const paths = words.filter((word) => !word.startsWith('--'));
  return { from, sources: paths.slice(0, -1), destination: paths[paths.length - 1]! };
}

let server: HealthServer | undefined;
afterAll(async () => server?.close());

describe('deploy/Dockerfile', () => {
  it('copies from the checkout only files that exist and that .dockerignore sends', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    const fromContext = instructions.filter((instruction) => instruction.keyword === 'COPY' && copyParts(instruction).from === null);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const instruction of fromContext) {
      for (const source of copyParts(instruction).sources) {
        expect(existsSync(join(ROOT, source)), `COPY ${source}: in the checkout`).toBe(true);
        const top = source.replace(/^\.\//, '').split('/')[0]!;
        expect(ignored, `COPY ${source}: not in .dockerignore`).not.toContain(top);
      }
    }
    // The build's inputs are all there: what scripts/build.mjs bundles (src/, machines/) and the lockfile npm ci needs.
    const copied = fromContext.flatMap((instruction) => copyParts(instruction).sources);
    for (const needed of ['package.json', 'package-lock.json', 'scripts', 'src', 'machines', 'bin', 'migrations']) expect(copied).toContain(needed);
  });

  it('runs the package bin, which loads the cli the build produces, from where the runtime stage put it', () => {
    const entry = jsonArgs(one('ENTRYPOINT'));
    expect(entry[0]).toBe('node');
    const workdir = one('WORKDIR').args;
    const script = entry[1]!;
    expect(script.startsWith(`${workdir}/`), `${script} is under WORKDIR ${workdir}`).toBe(true);
    const inRepo = posix.relative(workdir, script);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; dependencies: Record<string, string> };
    expect(Object.values(pkg.bin)).toContain(inRepo);
    // bin/tunnel-manager.js imports ../dist/cli.js; scripts/build.mjs makes dist/cli.js from its `cli` entry point.
    expect(readFileSync(join(ROOT, inRepo), 'utf8')).toContain("'../dist/cli.js'");
    expect(readFileSync(join(ROOT, 'scripts', 'build.mjs'), 'utf8')).toMatch(/entryPoints: \{\s*cli: 'src\/cli\.ts'/);
    // The runtime stage gets dist/ and the runtime packages from the build stage, and bin/ and migrations/ beside them.
    const buildWorkdir = instructions.find((instruction) => instruction.stage === 0 && instruction.keyword === 'WORKDIR')!.args;
    const fromBuild = runtime.filter((instruction) => instruction.keyword === 'COPY' && copyParts(instruction).from === 'build');
    for (const produced of ['dist', 'package.json']) expect(fromBuild.map((instruction) => copyParts(instruction).sources[0])).toContain(`${buildWorkdir}/${produced}`);
    const modules = fromBuild.find((instruction) => copyParts(instruction).destination === './node_modules');
    const made = instructions.find((instruction) => instruction.stage === 0 && instruction.keyword === 'RUN' && instruction.args.includes('scripts/runtime-modules.mjs'));
    expect(made?.args).toContain(`scripts/runtime-modules.mjs ${copyParts(modules!).sources[0]}`);
  });

  it('copies runtime packages with which the built commands run, and only those', async () => {
    // What the runtime stage lays out under /opt/tunnel-manager, made the same way from this checkout.
    const layout = mkdtempSync(join(tmpdir(), 'tm-runtime-layout-'));
    try {
      execFileSync(process.execPath, [join(ROOT, 'scripts', 'runtime-modules.mjs'), join(layout, 'node_modules')]);
      for (const copied of ['dist', 'bin', 'migrations', 'package.json']) cpSync(join(ROOT, copied), join(layout, copied), { recursive: true });
      const modules = readdirSync(join(layout, 'node_modules'));
      // Every package dist/ imports and this checkout installs is there (the optional ones of ws and debug are not
      // installed); the bundled libraries are not.
      const meta = JSON.parse(readFileSync(join(ROOT, 'dist', 'meta.json'), 'utf8')) as { outputs: Record<string, { imports: { path: string; external?: boolean }[] }> };
      const imported = new Set(Object.values(meta.outputs).flatMap((output) => output.imports.filter((entry) => entry.external).map((entry) => entry.path.split('/')[0]!)));
      for (const name of imported) if (!isBuiltin(name) && existsSync(join(ROOT, 'node_modules', name))) expect(modules, name).toContain(name);
      for (const bundled of ['cloudflare', 'dockerode', 'xstate', 'zod', '@modelcontextprotocol']) expect(modules).not.toContain(bundled);
      // The commands that load the database and the logger run from that layout alone.
      const data = join(layout, 'data');
      const run = (args: string[]) => execFileSync(process.execPath, [join(layout, 'bin', 'tunnel-manager.js'), ...args, '--data-dir', data], { cwd: layout, encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } });
      expect(run(['migrate'])).toMatch(/^migrated /);
      expect(run(['backup'])).toMatch(/^wrote /);
    } finally {
      rmSync(layout, { recursive: true, force: true });
    }
  }, 60_000);

  it('serves the data directory of its volume, named in the environment so that every command finds it', () => {
    expect(jsonArgs(one('CMD'))).toEqual(['serve']);
    expect(envOf('TUNNEL_MANAGER_DATA_DIR')).toBe(jsonArgs(one('VOLUME'))[0]);
    expect(readFileSync(join(ROOT, 'src', 'app', 'config', 'config.ts'), 'utf8')).toContain('env.TUNNEL_MANAGER_DATA_DIR');
    expect(readFileSync(join(ROOT, 'src', 'cli.ts'), 'utf8')).toContain("serve: async () => (await import('./commands/serve.ts')).serve");
    expect(one('USER').args).not.toBe('root');
  });

  it('checks health on the metrics listener: passes against the real /healthz, fails when nothing answers', async () => {
    const url = envOf('TUNNEL_MANAGER_HEALTH_URL');
    expect(url).toBeDefined();
    const parsed = new URL(url!);
    expect(parsed.host).toBe(DEFAULT_METRICS_LISTEN);
    const healthcheck = one('HEALTHCHECK').args;
    const probe = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];
    expect(probe[0]).toBe('node');

    server = await startHealthServer({ host: '127.0.0.1', port: 0, registry: new Registry(), readiness: () => ({ ready: false, reason: 'test' }), cloudflaredMetricsAddress: () => null });
    const run = (healthUrl: string) =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, probe.slice(1), { env: { ...process.env, TUNNEL_MANAGER_HEALTH_URL: healthUrl }, stdio: 'ignore' });
        child.on('error', reject);
        child.on('close', resolve);
      });
    expect(await run(`${server.url}${parsed.pathname}`)).toBe(0);
    // A path the listener does not serve (a typo in the Dockerfile) fails the check.
    expect(await run(`${server.url}/health`)).toBe(1);
    const closed = server.url;
    await server.close();
    server = undefined;
    expect(await run(`${closed}${parsed.pathname}`)).toBe(1);
  });
});
