import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SandboxFile } from '../../src/app/config/sandbox-mode.ts';
import { runCli, sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, portOf, projectPorts, reservedProjects, startOriginInRange, viaEdge } from '../helpers/service.ts';

/**
 * The sandbox starts the way the VM is today (issue 27, item 8): the emulator has the four CNAMEs that predate the
 * manager, and config.yml is a hand-written file with their four rules, each to a small service the sandbox runs. A
 * new user running `serve` sees chat, code, consilio and hejsan answer 200 through the sandbox edge before, during
 * and after the manager adopts them, through a reload, and after a restart (the services keep their ports).
 */
const PREEXISTING = ['chat.153.se', 'code.153.se', 'consilio.153.se', 'hejsan.153.se'];
const dir = mkdtempSync(join(tmpdir(), 'tm-seed-'));
const dataDir = join(dir, 'data');
const configPath = join(dataDir, 'cloudflared', 'config.yml');
let serve: ReturnType<typeof startCli> | null = null;
/** The embedded projects with port ranges of this run's own (another copy of the suite may run beside it). */
let projects: Awaited<ReturnType<typeof reservedProjects>> | null = null;
const configFile = join(dir, 'projects.yml');

afterAll(async () => {
  if (serve?.child.exitCode === null) {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<SandboxFile> {
  if (projects === null) {
    projects = await reservedProjects();
    writeFileSync(configFile, stringify({ projects }));
  }
  serve = startCli(['serve', '--config', configFile, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
  return sandboxFileOf<SandboxFile>(serve, dataDir);
}

async function stop(): Promise<void> {
  serve!.child.kill('SIGTERM');
  expect(await serve!.exited).toBe(0);
}

/** Every pre-existing name through the edge: status and body. */
async function sample(edgeUrl: string): Promise<{ hostname: string; status: number; body: string }[]> {
  return Promise.all(PREEXISTING.map(async (hostname) => ({ hostname, ...(await viaEdge(edgeUrl, hostname).catch(() => ({ status: 0, body: '' }))) })));
}

describe('the sandbox seeded as the VM is today', () => {
  it('the four pre-existing names answer 200 before, during and after the manager adopts them, and across a reload and a restart', async () => {
    const info = await start();
    // Before anything else: the first version of config.yml is the hand-written one with the four rules.
    const history = execFileSync('git', ['-C', join(dataDir, 'cloudflared'), 'log', '--reverse', '--format=%s'], { encoding: 'utf8' }).split('\n');
    expect(history[0]).toBe(`ingress: version found on disk when tunnel-manager first started: add ${PREEXISTING.join(', ')}, catch-all (hand-written)`);

    // From the first answer of each name on, every answer is the seed service's 200, while the manager adopts them.
    const ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
    const seen = new Set<string>();
    const failures: string[] = [];
    const watch = async () => {
      for (const answer of await sample(info.edgeUrl)) {
        if (answer.status === 200 && answer.body.startsWith(`${answer.hostname}: the service that was behind this name`)) seen.add(answer.hostname);
        else if (seen.has(answer.hostname)) failures.push(`${answer.hostname}: ${answer.status} ${answer.body.slice(0, 80)}`);
      }
    };
    await waitUntil(async () => {
      await watch();
      const routes = await call<{ routes: { hostname: string; status: string }[] }>(ms, 'tunnel_list_cnames', { project: 'meta-supervisor' });
      const adopted = routes.data.routes.filter((route) => PREEXISTING.includes(route.hostname) && route.status === 'adopted');
      return (seen.size === PREEXISTING.length && adopted.length === PREEXISTING.length) || undefined;
    }, 60_000, 'the four names to answer and to be adopted', 50);

    // A reload (a new route of a project) keeps them answering, during and after.
    const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
    const origin = await startOriginInRange(...projectPorts({ projects: projects ?? [] }, 'consilio', [0.5, 1]), 'seed-neighbour');
    try {
      expect((await call(consilio, 'port_allocate', { port: portOf(origin), purpose: 'neighbour' })).isError).toBe(false);
      const request = call(consilio, 'tunnel_request_cname', { subdomain: 'neighbour', targetPort: portOf(origin) });
      let done = false;
      void request.finally(() => (done = true));
      while (!done) await watch();
      expect((await request).isError).toBe(false);
      await watch();
    } finally {
      origin.close();
      await Promise.all([ms.close(), consilio.close()]);
    }
    expect(failures).toEqual([]);
    // The hand-written rules are kept as they were, beside the managed one.
    const config = readFileSync(configPath, 'utf8');
    for (const hostname of PREEXISTING) expect(config).toContain(`  - hostname: ${hostname}\n    service: http://localhost:`);
    expect(config).toContain('managed rule for neighbour.153.se');

    // After a restart, the services are back on the same ports, so the same rules reach them.
    const seeded = readFileSync(join(dataDir, 'sandbox', 'seed-services.json'), 'utf8');
    await stop();
    const again = await start();
    await waitUntil(async () => (await sample(again.edgeUrl)).every((answer) => answer.status === 200) || undefined, 60_000, 'the four names to answer after the restart');
    expect(readFileSync(join(dataDir, 'sandbox', 'seed-services.json'), 'utf8')).toBe(seeded);
    // As a user would check it.
    const status = await runCli(['status', '--data-dir', dataDir]);
    expect(status.code).toBe(0);
  }, 150_000);
});
