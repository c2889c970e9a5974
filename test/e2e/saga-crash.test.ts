import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { SandboxFile } from '../../src/app/config/sandbox-mode.ts';
import { sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { standinPidsFor } from '../helpers/standin-cloudflared.ts';
import { call, mcpClient, projectPorts, reservedProjects, startOriginInRange, viaEdge } from '../helpers/service.ts';

/**
 * The manager killed with SIGKILL while a route is `pending` in each step of its saga — the DNS step, the
 * ingress/reload step, the tunnel-ready step — then started again on the same data directory. The manager runs as
 * a real process (`tunnel-manager serve`); the Cloudflare emulator runs inside it and keeps its records in
 * <dataDir>/sandbox/cloudflare.json; the stand-in cloudflared it spawned survives the kill and is adopted; the edge
 * comes back on the same port so the adopted stand-in reconnects. After each restart the outcome must be consistent:
 * the route is active with its record, its rule and traffic, or nothing of it remains.
 */

type Route = { hostname: string; status: string };
type Actor = { path: string; state: string; context: Record<string, unknown> };

const dir = mkdtempSync(join(tmpdir(), 'tm-saga-crash-'));
const dataDir = join(dir, 'data');
const configFile = join(dir, 'tunnel-manager.yml');
const faultFile = join(dir, 'standin-faults');
const configPath = join(dataDir, 'cloudflared', 'config.yml');
const cloudflaredPidfile = join(dataDir, 'cloudflared', 'cloudflared.pid');
let edgePort = 0;
let port = 0;
let origin: Awaited<ReturnType<typeof startOriginInRange>>;

interface Manager {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
  info: SandboxFile;
  ms: Client;
  consilio: Client;
}
let manager: Manager | null = null;
const managerPids: number[] = [];
/** Routes that are active, and must keep answering through every crash. */
const published: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: chosen } = server.address() as { port: number };
      server.close(() => resolve(chosen));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function standinPids(): number[] {
  return standinPidsFor(configPath);
}

function livePid(): number | null {
  if (!existsSync(cloudflaredPidfile)) return null;
  return (JSON.parse(readFileSync(cloudflaredPidfile, 'utf8')) as { pid: number }).pid;
}

async function startManager(): Promise<Manager> {
  const cli = startCli(['serve', '--config', configFile, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', `127.0.0.1:${edgePort}`], {
    env: { TM_STANDIN_FAULT_FILE: faultFile },
  });
  managerPids.push(cli.child.pid!);
  const info = await sandboxFileOf<SandboxFile>(cli, dataDir);
  const ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  return { child: cli.child, exited: cli.exited, output: cli.output, info, ms, consilio };
}

async function tunnelRunning(m: Manager): Promise<void> {
  await waitUntil(
    async () => {
      const status = await call<{ state: string; readyConnections: number | null }>(m.ms, 'tunnel_get_status');
      return status.data.state.startsWith('running') || undefined;
    },
    60_000,
    'the tunnel to be running',
  );
}

async function killManager(m: Manager): Promise<void> {
  m.child.kill('SIGKILL');
  await m.exited;
  await Promise.all([m.ms.close().catch(() => undefined), m.consilio.close().catch(() => undefined)]);
}

async function admin(m: Manager, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${new URL(m.info.cloudflareApiUrl).origin}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${m.info.cloudflareApiToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { result: Record<string, unknown> }).result;
}

async function recordsNamed(m: Manager, hostname: string): Promise<{ id: string; name: string }[]> {
  const state = (await admin(m, '/__admin/state')).state as { records: { id: string; name: string }[] };
  return state.records.filter((record) => record.name === hostname);
}

async function routeOf(m: Manager, hostname: string): Promise<Route | undefined> {
  const listed = await call<{ routes: Route[] }>(m.ms, 'tunnel_list_cnames', { project: 'consilio' });
  return listed.data.routes.find((route) => route.hostname === hostname);
}

/** Polls supervisor_inspect (which also flushes the snapshot to SQLite) until the saga for `hostname` is in `state`. */
async function sagaIn(m: Manager, hostname: string, state: string, also: (actors: Actor[]) => boolean = () => true): Promise<void> {
  await waitUntil(
    async () => {
      const report = await call<{ actors: Actor[] }>(m.ms, 'supervisor_inspect', { limit: 1 });
      const saga = report.data.actors.find(
        (actor) => actor.path.startsWith('supervisor/route-') && (actor.context.request as { hostname?: string } | undefined)?.hostname === hostname,
      );
      return (saga?.state === state && also(report.data.actors)) || undefined;
    },
    30_000,
    `the saga for ${hostname} to be in ${state}`,
  );
}

/** After the restart: the saga ends, and either everything of the route is there and works, or nothing is. */
async function expectConsistent(m: Manager, hostname: string): Promise<'active' | 'gone'> {
  const route = await waitUntil(
    async () => {
      const found = await routeOf(m, hostname);
      return found === undefined ? ('gone' as const) : found.status === 'active' ? ('active' as const) : undefined;
    },
    60_000,
    `the resumed saga for ${hostname} to finish`,
  );
  const records = await recordsNamed(m, hostname);
  const rule = readFileSync(configPath, 'utf8').includes(`hostname: ${hostname}`);
  if (route === 'active') {
    expect(records).toHaveLength(1);
    expect(rule).toBe(true);
    await waitUntil(async () => (await viaEdge(m.info.edgeUrl, hostname)).status === 200 || undefined, 20_000, `traffic to reach ${hostname}`);
    expect(await viaEdge(m.info.edgeUrl, hostname)).toMatchObject({ status: 200, body: expect.stringContaining('hello from crash-origin') });
  } else {
    expect(records).toEqual([]);
    expect(rule).toBe(false);
  }
  // The other routes came through the crash too (once the tunnel runs: the last case kills it on purpose).
  await tunnelRunning(m);
  for (const other of published) {
    await waitUntil(async () => (await viaEdge(m.info.edgeUrl, other)).status === 200 || undefined, 20_000, `traffic to reach ${other}`);
  }
  // Exactly one cloudflared runs for this data directory: the one the pidfile names (no abandoned replica).
  await waitUntil(() => (standinPids().length === 1 && standinPids()[0] === livePid()) || undefined, 30_000, 'a single stand-in cloudflared, the live one').catch(
    (error: Error) => {
      throw new Error(`${error.message}: running ${JSON.stringify(standinPids())}, pidfile ${livePid()}`);
    },
  );
  if (route === 'active') published.push(hostname);
  return route;
}

beforeAll(async () => {
  edgePort = await freePort();
  const projects = await reservedProjects();
  writeFileSync(
    configFile,
    [
      `dataDir: ${dataDir}`,
      `projects: ${JSON.stringify(projects)}`,
      'cloudflared:',
      `  metricsAddress: 127.0.0.1:0`,
      'health:',
      '  probeIntervalSeconds: 1',
      'restart:',
      '  startTimeoutSeconds: 20',
      '  stopGraceSeconds: 5',
      // The tunnel-ready case needs a tunnel that stays down for a few seconds after a failed start.
      '  backoffSeconds: [8]',
      'reload:',
      '  drainGraceSeconds: 1',
      // A test's own polling is not what the per-project call limit is about (test/e2e/limits.test.ts is).
      'limits:',
      '  toolCallsPerMinute: 0',
      'logging:',
      '  level: info',
      '',
    ].join('\n'),
  );
  origin = await startOriginInRange(...projectPorts({ projects }, 'consilio', [0.5, 1]), 'crash-origin');
  port = (origin.address() as { port: number }).port;
  manager = await startManager();
  await tunnelRunning(manager);
  const allocated = await call(manager.consilio, 'port_allocate', { port, purpose: 'crash tests' });
  expect(allocated.isError, JSON.stringify(allocated.data)).toBe(false);
  const first = await call(manager.consilio, 'tunnel_request_cname', { subdomain: 'before-crash', targetPort: port });
  expect(first.isError, JSON.stringify(first.data)).toBe(false);
  published.push('before-crash.153.se');
}, 120_000);

afterAll(async () => {
  try {
    if (manager && manager.child.exitCode === null) {
      await Promise.all([manager.ms.close().catch(() => undefined), manager.consilio.close().catch(() => undefined)]);
      manager.child.kill('SIGTERM');
      await Promise.race([manager.exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    }
  } finally {
    // Whatever is still running was started by this file: the managers, and the stand-ins they spawned.
    for (const pid of [...managerPids, ...standinPids()]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    origin?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

describe('the manager killed with SIGKILL in every saga step comes back consistent', () => {
  it('with no saga running: the restarted manager adopts the stand-in, which reconnects to the edge on the same port', async () => {
    const before = livePid();
    expect(before).not.toBeNull();
    await killManager(manager!);
    expect(isAlive(before!)).toBe(true);
    manager = await startManager();
    await tunnelRunning(manager);
    const status = await call<{ pid: number | null }>(manager.ms, 'tunnel_get_status');
    expect(status.data.pid).toBe(before);
    expect(livePid()).toBe(before);
    await waitUntil(async () => (await viaEdge(manager!.info.edgeUrl, 'before-crash.153.se')).status === 200 || undefined, 20_000, 'the adopted stand-in to serve again');
    expect(standinPids()).toEqual([before]);
  }, 60_000);

  it('in the DNS step (the create is in flight at the emulator)', async () => {
    const m = manager!;
    const hostname = 'crash-dns.153.se';
    await admin(m, '/__admin/faults', { faults: [{ route: 'POST /zones/:zone/dns_records', latencyMs: 120_000 }] });
    const pending = call(m.consilio, 'tunnel_request_cname', { subdomain: 'crash-dns', targetPort: port }).catch(() => 'killed');
    await sagaIn(m, hostname, 'creatingDns');
    expect(await routeOf(m, hostname)).toMatchObject({ status: 'pending' });
    await waitUntil(async () => ((await admin(m, '/__admin/faults')) as unknown as { hits: number }[])[0]!.hits === 1 || undefined, 10_000, 'the create to be held');
    await killManager(m);
    expect(await pending).toBe('killed');

    manager = await startManager();
    expect(await expectConsistent(manager, hostname)).toBe('active');
  }, 120_000);

  it('in the ingress/reload step (a new replica is starting on the new file)', async () => {
    const m = manager!;
    const hostname = 'crash-reload.153.se';
    writeFileSync(faultFile, 'slow-start 8\n');
    const pending = call(m.consilio, 'tunnel_request_cname', { subdomain: 'crash-reload', targetPort: port }).catch(() => 'killed');
    await sagaIn(m, hostname, 'configuringIngress', (actors) => actors.find((actor) => actor.path === 'supervisor/ingress')?.state === 'reloading');
    // The replica has read the fault file and holds off connecting: the reload is in progress.
    await waitUntil(() => readFileSync(join(dataDir, 'cloudflared', 'cloudflared.log'), 'utf8').includes('Slow start: connecting in 8000 ms') || undefined, 20_000, 'the replica to be starting slowly');
    expect(standinPids()).toHaveLength(2);
    expect(readFileSync(configPath, 'utf8')).toContain(`hostname: ${hostname}`);
    await killManager(m);
    expect(await pending).toBe('killed');
    rmSync(faultFile);

    manager = await startManager();
    expect(await expectConsistent(manager, hostname)).toBe('active');
  }, 120_000);

  it('in the tunnel-ready step (cloudflared died and cannot start)', async () => {
    const m = manager!;
    const hostname = 'crash-ready.153.se';
    writeFileSync(faultFile, 'refuse-start\n');
    process.kill(livePid()!, 'SIGKILL');
    await waitUntil(async () => (await call<{ state: string }>(m.ms, 'tunnel_get_status')).data.state === 'backoff' || undefined, 30_000, 'the tunnel to back off');
    const pending = call(m.consilio, 'tunnel_request_cname', { subdomain: 'crash-ready', targetPort: port }).catch(() => 'killed');
    await sagaIn(m, hostname, 'awaitingTunnel');
    await killManager(m);
    expect(await pending).toBe('killed');
    rmSync(faultFile);

    manager = await startManager();
    expect(await expectConsistent(manager, hostname)).toBe('active');
  }, 120_000);
});
