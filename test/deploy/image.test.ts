import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/package-root.ts';
import { DEPLOY_TEST_LABEL, deployImages, docker, readOperationsDoc, waitFor } from './support.ts';

/**
 * deploy/Dockerfile built for real (on node:24-bookworm-slim and debian:bookworm-slim made locally from Debian's
 * packages: no registry image can be pulled here) and run, in sandbox mode and against the Cloudflare API emulator:
 * its health check turns healthy, and every `docker exec` / `docker inspect` command docs/operations.md gives for a
 * running container answers right (doctor with no problem, status finding the service's database).
 */

const images = deployImages('the image test (test/deploy/image.test.ts)');

const IMAGE = `tunnel-manager:ci-test-${process.pid}`;
/** The build stage, tagged so that it is removed with the image (untagged, it would stay behind unlabelled). */
const BUILD_STAGE = `tunnel-manager:ci-build-${process.pid}`;
/** What the image may weigh (docs/operations.md, "Running in a container"). */
const SIZE_BUDGET_BYTES = 250 * 1000 * 1000;
const scratch = mkdtempSync(join(tmpdir(), 'tm-deploy-image-'));
const created: { containers: string[]; volumes: string[] } = { containers: [], volumes: [] };

/** The documented commands for a running container, as written in "Running in a container". */
function documentedContainerCommands(): string[] {
  const doc = readOperationsDoc();
  const section = doc.slice(doc.indexOf('## Running in a container'), doc.indexOf('\n## ', doc.indexOf('## Running in a container') + 1));
  return section
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => /^docker (exec|inspect) .*\btunnel-manager\b/.test(line));
}

/** Runs one of those commands against CONTAINER (the doc names its container tunnel-manager). */
function runDocumented(command: string, container: string) {
  const words = command.split(/\s+/).map((word) => (word === 'tunnel-manager' ? container : word.replace(/^'(.*)'$/, '$1')));
  return docker(words.slice(1), { allowFailure: true, timeoutMs: 120_000 });
}

/** The container, labelled, with the image's own health check run every second instead of every 30 s. */
function run(name: string, args: string[], command: string[] = []): string {
  created.containers.push(name);
  docker(['run', '-d', '--name', name, '--label', DEPLOY_TEST_LABEL, '--health-interval', '1s', '--health-start-period', '0s', ...args, IMAGE, ...command]);
  return name;
}

function volume(name: string): string {
  created.volumes.push(name);
  docker(['volume', 'create', '--label', DEPLOY_TEST_LABEL, name]);
  return name;
}

/** A file for the container, readable by the image's user (uid 10001) only. */
function fileFor(name: string, content: string): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  chownSync(path, 10001, 10001);
  chmodSync(path, 0o600);
  return path;
}

const healthy = (container: string) =>
  waitFor(`${container} to be healthy`, 120_000, () => {
    const state = docker(['inspect', '--format', '{{.State.Status}} {{.State.Health.Status}}', container]).stdout.trim();
    if (state.startsWith('exited')) throw new Error(`${container} exited:\n${docker(['logs', container], { allowFailure: true }).stderr.slice(-3000)}`);
    return state === 'running healthy' ? true : undefined;
  });

/** Every documented command answers right for this container; doctor finds no problem. */
function checkDocumentedCommands(container: string, expectedState: RegExp): void {
  const commands = documentedContainerCommands();
  expect(commands.map((command) => command.split(/\s+/).slice(0, 2).join(' '))).toEqual(expect.arrayContaining(['docker inspect', 'docker exec']));
  for (const command of commands) {
    const result = runDocumented(command, container);
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status, `${command}\n${output}`).toBe(0);
    if (command.includes('Health.Status')) expect(result.stdout.trim()).toBe('healthy');
    if (/ doctor$/.test(command)) {
      expect(output, command).toContain('No problem found.');
      expect(output, command).not.toMatch(/^✗/m);
    }
    if (/ status$/.test(command)) expect(result.stdout, command).toMatch(expectedState);
    if (/ backup$/.test(command)) expect(result.stdout, command).toMatch(/wrote \/var\/lib\/tunnel-manager\/backups\/tunnel-manager-.*\.db/);
  }
}

describe.skipIf(images === null)('deploy/Dockerfile, built and run', () => {
  beforeAll(() => {
    for (const [tag, target] of [[BUILD_STAGE, ['--target', 'build']], [IMAGE, []]] as const) {
      const build = docker(['build', '-f', join(PACKAGE_ROOT, 'deploy', 'Dockerfile'), ...target, '--label', DEPLOY_TEST_LABEL, '-t', tag, PACKAGE_ROOT], { allowFailure: true, timeoutMs: 1_200_000 });
      expect(build.status, `${build.stdout.slice(-4000)}\n${build.stderr.slice(-4000)}`).toBe(0);
    }
  }, 1_200_000);

  afterAll(() => {
    for (const container of created.containers) docker(['rm', '-f', '-v', container], { allowFailure: true });
    for (const name of created.volumes) docker(['volume', 'rm', '-f', name], { allowFailure: true });
    docker(['rmi', '-f', IMAGE, BUILD_STAGE], { allowFailure: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  it(`runs Node 24, holds only production code, and weighs under ${SIZE_BUDGET_BYTES / 1e6} MB`, () => {
    expect(docker(['run', '--rm', '--label', DEPLOY_TEST_LABEL, '--entrypoint', 'node', IMAGE, '--version']).stdout.trim()).toMatch(/^v24\./);
    const modules = docker(['run', '--rm', '--label', DEPLOY_TEST_LABEL, '--entrypoint', 'ls', IMAGE, '/opt/tunnel-manager/node_modules']).stdout.split('\n');
    expect(modules).toEqual(expect.arrayContaining(['better-sqlite3', 'pino', 'pino-pretty']));
    for (const development of ['vitest', 'typescript', 'esbuild', 'eslint', 'cloudflare']) expect(modules).not.toContain(development);
    const size = Number(docker(['image', 'inspect', '--format', '{{.Size}}', IMAGE]).stdout.trim());
    console.log(`[image] ${IMAGE}: ${(size / 1e6).toFixed(1)} MB`);
    expect(size).toBeLessThan(SIZE_BUDGET_BYTES);
  });

  it('sandbox mode: the health check passes on the configured metrics.listen, and the documented commands answer right', async () => {
    const config = fileFor('sandbox.yml', 'metrics:\n  listen: 127.0.0.1:9464\n');
    const container = run(`tm-ci-image-sandbox-${process.pid}`, ['--init', '-v', `${volume(`tm-ci-image-sandbox-${process.pid}`)}:/var/lib/tunnel-manager`, '-v', `${config}:/etc/tunnel-manager/tunnel-manager.yml:ro`]);
    await healthy(container);
    checkDocumentedCommands(container, /^tunnel [0-9a-f-]+: running\./m);
  }, 300_000);

  it('against the Cloudflare API emulator (production mode): healthy, doctor checks the API and finds no problem', async () => {
    const token = `cfat_${randomBytes(24).toString('hex')}`;
    // The emulator in a container of its own from the same image; the manager shares its network namespace.
    const emulator = run(`tm-ci-image-emulator-${process.pid}`, ['--entrypoint', 'node'], ['/opt/tunnel-manager/dist/cloudflare-emulator.js', '--port', '8788', '--token', token]);
    await waitFor('the emulator to listen', 60_000, () => (docker(['logs', emulator]).stdout.includes('"apiBaseUrl"') ? true : undefined));
    const config = fileFor(
      'emulator.yml',
      [
        'cloudflare:',
        '  apiBaseUrl: http://127.0.0.1:8788/client/v4',
        'cloudflared:',
        '  driver: spawn',
        '  command: [node, /opt/tunnel-manager/dist/standin-cloudflared.js]',
        'metrics:',
        '  listen: 127.0.0.1:9464',
        '',
      ].join('\n'),
    );
    const container = run(`tm-ci-image-production-${process.pid}`, [
      '--init', '--network', `container:${emulator}`,
      '-v', `${volume(`tm-ci-image-production-${process.pid}`)}:/var/lib/tunnel-manager`,
      '-v', `${config}:/etc/tunnel-manager/tunnel-manager.yml:ro`,
      // The token as the doc hands it over: a file read through $CREDENTIALS_DIRECTORY, in neither the image nor inspect.
      '-v', `${fileFor('cloudflare_api_token', token)}:/run/secrets/cloudflare_api_token:ro`, '-e', 'CREDENTIALS_DIRECTORY=/run/secrets',
    ]);
    await healthy(container);
    checkDocumentedCommands(container, /^tunnel [0-9a-f-]+: running\.up$/m);
    const doctor = docker(['exec', container, 'node', '/opt/tunnel-manager/bin/tunnel-manager.js', 'doctor']).stdout;
    expect(doctor).toContain('✓ Cloudflare API token: found (systemd-credential)');
    expect(doctor).toContain('✓ Cloudflare API reachable, token active');
    expect(docker(['inspect', container]).stdout).not.toContain(token);
  }, 300_000);
});
