import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecoveryReport } from '../../src/app/operations/recover.ts';
import { runCli, sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, portOf, projectPorts, reservedProjects, startOriginInRange, viaEdge } from '../helpers/service.ts';

/**
 * `tunnel-manager recover` as an operator runs it: routes serve, the service stops, its database is lost; recover
 * (refused while the service runs, a dry run writing nothing) rebuilds the ledger from the records' ownership markers
 * and config.yml's managed rules; the service starts again and every route serves through the edge with its target,
 * listed by its own project, its port allocated to it again.
 */

const root = mkdtempSync(join(tmpdir(), 'tm-recover-'));
// The embedded configuration with port ranges of this test's own (reservedProjects), for serve and recover alike.
const projects = await reservedProjects();
const configFile = join(root, 'tunnel-manager.yml');
writeFileSync(configFile, `projects: ${JSON.stringify(projects)}\n`);
const origins: Server[] = [];
const serves: { child: { kill(signal: NodeJS.Signals): boolean; exitCode: number | null }; exited: Promise<number | null> }[] = [];

afterAll(async () => {
  for (const serve of serves) {
    if (serve.child.exitCode === null) serve.child.kill('SIGTERM');
    await serve.exited;
  }
  for (const origin of origins) origin.close();
  rmSync(root, { recursive: true, force: true });
});

interface Info {
  pid: number;
  mcpUrl: string;
  edgeUrl: string;
  tokens: Record<string, string>;
}

function startServe(dataDir: string) {
  const serve = startCli(['serve', '--config', configFile, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
  serves.push(serve);
  return serve;
}

describe('tunnel-manager recover', () => {
  it('rebuilds a lost ledger so that every route still serves, with its target, after the next start', async () => {
    const dataDir = join(root, 'data');
    const databasePath = join(dataDir, 'tunnel-manager.db');
    const first = startServe(dataDir);
    const info = await sandboxFileOf<Info>(first, dataDir);
    const published: { hostname: string; project: string; target: string; port: number; origin: string }[] = [];
    for (const project of ['consilio', 'odin'] as const) {
      const name = `${project}-recover-cli`;
      const origin = await startOriginInRange(...projectPorts({ projects }, project), name);
      origins.push(origin);
      const client = await mcpClient(info.mcpUrl, info.tokens[project]!);
      expect((await call(client, 'port_allocate', { port: portOf(origin), purpose: 'recover test' })).isError).toBe(false);
      const answer = await call<{ hostname: string; target: string }>(client, 'tunnel_request_cname', { subdomain: name, targetPort: portOf(origin) });
      expect(answer.isError, JSON.stringify(answer.data)).toBe(false);
      published.push({ hostname: answer.data.hostname, project, target: answer.data.target, port: portOf(origin), origin: name });
      await client.close();
    }
    for (const route of published) expect((await viaEdge(info.edgeUrl, route.hostname)).body).toContain(`hello from ${route.origin}`);

    // While the service runs it is the only writer: recover is refused, with the way out.
    const refused = await runCli(['recover', '--config', configFile, '--data-dir', dataDir]);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`The service (pid ${info.pid}) is running`);
    expect(refused.stderr).toContain('systemctl stop tunnel-manager');

    // The service stops and its database is lost; config.yml and the records in (the sandbox's) Cloudflare remain.
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${databasePath}${suffix}`, { force: true });

    // A dry run says what would come back and writes nothing.
    const dry = await runCli(['recover', '--config', configFile, '--data-dir', dataDir, '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as RecoveryReport;
    expect(planned.dryRun).toBe(true);
    expect(planned.recovered.filter((route) => route.status === 'active').map((route) => route.hostname).sort()).toEqual(published.map((route) => route.hostname).sort());
    expect(existsSync(databasePath)).toBe(false);

    const recovered = await runCli(['recover', '--config', configFile, '--data-dir', dataDir, '--json']);
    expect(recovered.code, recovered.stderr).toBe(0);
    const report = JSON.parse(recovered.stdout) as RecoveryReport;
    expect(report.ledgerBefore).toBe(0);
    for (const route of published) {
      expect(report.recovered).toContainEqual(expect.objectContaining({ hostname: route.hostname, project: route.project, target: route.target, status: 'active', basis: 'recovered' }));
      expect(report.ports).toContainEqual({ hostname: route.hostname, project: route.project, port: route.port, outcome: 'allocated' });
    }
    // The seed's records that predate us are adopted, as a first start would.
    expect(report.recovered).toContainEqual(expect.objectContaining({ hostname: 'chat.153.se', status: 'adopted', basis: 'unmarked' }));

    // The rows are in the database itself, active with their targets, before any service has run on it.
    const db = new BetterSqlite3(databasePath, { readonly: true });
    try {
      for (const route of published) {
        expect(db.prepare('SELECT project, service, status FROM routes WHERE hostname = ?').get(route.hostname)).toEqual({ project: route.project, service: route.target, status: 'active' });
      }
    } finally {
      db.close();
    }

    // Again: nothing is missing any more, and no row is overwritten.
    const again = await runCli(['recover', '--config', configFile, '--data-dir', dataDir]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^recovered 0 route\(s\)/);
    expect(again.stdout).toContain(`left alone: ${report.recovered.length} record(s) already in the ledger`);

    // The service starts on the recovered ledger: every route serves, with its target, listed by its project.
    const second = startServe(dataDir);
    const after = await sandboxFileOf<Info>(second, dataDir);
    for (const route of published) {
      const served = await waitUntil(
        async () => {
          const answer = await viaEdge(after.edgeUrl, route.hostname).catch(() => undefined);
          return answer?.status === 200 ? answer : undefined;
        },
        60_000,
        `${route.hostname} to serve after recovery`,
      );
      expect(served.body).toContain(`hello from ${route.origin}`);
      const client = await mcpClient(after.mcpUrl, after.tokens[route.project]!);
      const list = await call<{ routes: { hostname: string; project: string; target: string; status: string }[] }>(client, 'tunnel_list_cnames');
      expect(list.data.routes).toContainEqual(expect.objectContaining({ hostname: route.hostname, project: route.project, target: route.target, status: 'active' }));
      const ports = await call<{ allocations: { port: number; project: string }[] }>(client, 'port_list');
      expect(ports.data.allocations).toContainEqual(expect.objectContaining({ port: route.port, project: route.project }));
      await client.close();
    }
  }, 180_000);
});
