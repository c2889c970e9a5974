import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecoveryReport } from '../../src/app/operations/recover.ts';
import type { SandboxFile } from '../../src/app/config/sandbox-mode.ts';
import { runCli, sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { standinPidsFor } from '../helpers/standin-cloudflared.ts';
import { call, freePortInRange, mcpClient } from '../helpers/service.ts';

/**
 * `restore` and `recover` take input from outside (a backup file, the records' markers, config.yml's managed rules)
 * and must not serve what it claims without checking: a restored active row for a hand-made record that is not ours,
 * a row of a project that does not exist, a forged meta-supervisor route to another project's port. After the
 * restore, the next start serves a row only when its record is ours, its project exists and holds its port; the rest
 * are `failed`, told to the meta-supervisor, never rendered into config.yml and never a metrics label. `recover` takes
 * in no row for a project that does not exist and serves no route whose project cannot hold its port.
 */

const root = mkdtempSync(join(tmpdir(), 'tm-restore-trust-'));
const dataDir = join(root, 'data');
const configPath = join(dataDir, 'cloudflared', 'config.yml');
const databasePath = join(dataDir, 'tunnel-manager.db');
const serves: ReturnType<typeof startCli>[] = [];

afterAll(async () => {
  for (const serve of serves) {
    if (serve.child.exitCode === null) serve.child.kill('SIGTERM');
    await serve.exited;
  }
  for (const pid of standinPidsFor(configPath)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

async function startServe() {
  const serve = startCli(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
  serves.push(serve);
  const info = await sandboxFileOf<SandboxFile>(serve, dataDir);
  return { serve, info };
}

async function stop(serve: ReturnType<typeof startCli>): Promise<void> {
  serve.child.kill('SIGTERM');
  expect(await serve.exited).toBe(0);
}

/** A record made in the sandbox's Cloudflare by hand, as someone with the dashboard would. */
async function makeRecord(info: SandboxFile, zoneId: string, record: Record<string, unknown>): Promise<void> {
  const answer = await fetch(`${info.cloudflareApiUrl}/zones/${zoneId}/dns_records`, {
    method: 'POST',
    headers: { authorization: `Bearer ${info.cloudflareApiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(record),
  });
  expect(answer.status, await answer.clone().text()).toBe(200);
}

/** Every version of config.yml git ever recorded, as one text. */
const configHistory = () => execFileSync('git', ['-C', join(dataDir, 'cloudflared'), 'log', '-p', '--all', '--', 'config.yml'], { encoding: 'utf8' });

describe('restore and recover do not trust their input', () => {
  it('after a restore, only rows whose record is ours and whose project exists and holds the port are served', async () => {
    const first = await startServe();
    const consilio = await mcpClient(first.info.mcpUrl, first.info.tokens.consilio!);
    const port = (await call<{ port: number }>(consilio, 'port_allocate', { port: await freePortInRange(3150, 3199), purpose: 'restore test' })).data.port;
    const real = await call<{ hostname: string }>(consilio, 'tunnel_request_cname', { subdomain: 'real-restore', targetPort: port, publishAhead: true });
    expect(real.isError, JSON.stringify(real.data)).toBe(false);
    await consilio.close();
    const tunnelTarget = `${first.info.tunnelId}.cfargotunnel.com`;
    const row = (db: BetterSqlite3.Database) => db.prepare("SELECT zone_id, zone_name FROM routes WHERE hostname = 'real-restore.153.se'").get() as { zone_id: string; zone_name: string };
    const live = new BetterSqlite3(databasePath, { readonly: true });
    const zone = row(live);
    live.close();
    // The account's own www.153.se is an A record made by hand (the sandbox's seed); two CNAMEs to our tunnel carry
    // forged markers.
    await makeRecord(first.info, zone.zone_id, { type: 'CNAME', name: 'ghost-route.153.se', content: tunnelTarget, proxied: true, comment: 'tunnel-manager:owner=ghostproject' });
    await makeRecord(first.info, zone.zone_id, { type: 'CNAME', name: 'forged-ms.153.se', content: tunnelTarget, proxied: true, comment: 'tunnel-manager:owner=meta-supervisor' });
    const backupFile = join(root, 'hostile.db');
    const backup = await runCli(['backup', '--data-dir', dataDir, '--out', backupFile]);
    expect(backup.code, backup.stderr).toBe(0);
    await stop(first.serve);

    // The hostile backup: three active rows nobody published.
    const hostile = new BetterSqlite3(backupFile);
    const insert = hostile.prepare(
      `INSERT INTO routes (hostname, zone_id, zone_name, project, target_port, service, status, source, dns_record_id, dns_created, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'active', 'request', NULL, 1, 0, 0)`,
    );
    insert.run('www.153.se', zone.zone_id, zone.zone_name, 'consilio', port, `http://localhost:${port}`);
    insert.run('ghost-route.153.se', zone.zone_id, zone.zone_name, 'ghostproject', 3399, 'http://localhost:3399');
    insert.run('forged-ms.153.se', zone.zone_id, zone.zone_name, 'meta-supervisor', port, `http://localhost:${port}`);
    hostile.close();

    const restored = await runCli(['restore', backupFile, '--data-dir', dataDir]);
    expect(restored.code, restored.stderr).toBe(0);

    const second = await startServe();
    const ms = await mcpClient(second.info.mcpUrl, second.info.tokens['meta-supervisor']!);
    type Listed = { routes: { hostname: string; status: string; project: string }[] };
    const statuses = await waitUntil(async () => {
      const listed = await call<Listed>(ms, 'tunnel_list_cnames', { limit: 1000 });
      const byName = new Map(listed.data.routes.map((route) => [route.hostname, route.status]));
      const wanted = ['real-restore.153.se', 'www.153.se', 'ghost-route.153.se', 'forged-ms.153.se'].map((hostname) => byName.get(hostname));
      return wanted.every((status) => status === 'active' || status === 'failed') ? wanted : undefined;
    }, 60_000, 'the restored rows to be checked');
    expect(statuses).toEqual(['active', 'failed', 'failed', 'failed']);
    // The real route is served again; nothing of the forged ones was ever rendered into config.yml.
    await waitUntil(() => readFileSync(configPath, 'utf8').includes('hostname: real-restore.153.se') || undefined, 30_000, 'the real route to be rendered');
    const history = configHistory();
    for (const forged of ['www.153.se', 'ghost-route.153.se', 'forged-ms.153.se']) expect(history).not.toContain(`hostname: ${forged}`);
    // The meta-supervisor hears each, with what to do.
    const events = await call<{ events: { kind: string; project: string; data: { hostname: string; reason: string; fix: string } }[] }>(ms, 'tunnel_get_events', { cursor: 0, limit: 500 });
    const unverified = events.data.events.filter((event) => event.kind === 'route.unverified' && event.project === 'meta-supervisor');
    expect(unverified.map((event) => event.data.hostname).sort()).toEqual(['forged-ms.153.se', 'ghost-route.153.se', 'www.153.se']);
    expect(unverified.find((event) => event.data.hostname === 'www.153.se')?.data.reason).toContain('no CNAME www.153.se pointing at this tunnel');
    expect(unverified.find((event) => event.data.hostname === 'ghost-route.153.se')?.data.reason).toContain('not in the configuration');
    expect(unverified.find((event) => event.data.hostname === 'forged-ms.153.se')?.data.reason).toContain(`port ${port} is not allocated to meta-supervisor`);
    // No metrics label for a project that does not exist.
    const metrics = await (await fetch(second.info.metricsUrl!)).text();
    expect(metrics).not.toContain('ghostproject');
    expect(metrics).toContain('tunnel_manager_routes{status="failed",project="unconfigured"} 1');
    // Removing the forged row deletes nothing in Cloudflare that is not ours.
    const removed = await call<{ deleted: boolean; dnsRecordDeleted: boolean }>(ms, 'tunnel_delete_cname', { hostname: 'www.153.se' });
    expect(removed.isError, JSON.stringify(removed.data)).toBe(false);
    expect(removed.data).toMatchObject({ deleted: true, dnsRecordDeleted: false });
    await ms.close();
    await stop(second.serve);
    expect(restored.stdout).toContain('only once its DNS record, its project and its port check out');
    const state = JSON.parse(readFileSync(join(dataDir, 'sandbox', 'cloudflare.json'), 'utf8')) as { records: { name: string; type: string; content: string }[] };
    expect(state.records.filter((record) => record.name === 'www.153.se')).toEqual([expect.objectContaining({ type: 'A', content: '192.0.2.10' })]);
  }, 240_000);

  it('recover takes in no row for a project that does not exist, and serves no route whose project cannot hold its port', async () => {
    // The ledger is lost; config.yml gains a forged managed rule sending forged-ms.153.se to consilio's port.
    const text = readFileSync(configPath, 'utf8');
    const lines = text.split('\n');
    const start = lines.findIndex((line) => line.includes('managed rule for real-restore.153.se'));
    let end = lines.findIndex((line, index) => index > start && line.includes('- hostname: real-restore.153.se'));
    do end += 1;
    while (end < lines.length && lines[end]!.startsWith('    ') && !lines[end]!.trimStart().startsWith('- '));
    const forged = lines.slice(start, end).map((line) => line.replaceAll('real-restore.153.se', 'forged-ms.153.se'));
    writeFileSync(configPath, [...lines.slice(0, start), ...forged, ...lines.slice(start)].join('\n'));
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${databasePath}${suffix}`, { force: true });

    const recovered = await runCli(['recover', '--data-dir', dataDir, '--json']);
    expect(recovered.code, recovered.stderr).toBe(0);
    const report = JSON.parse(recovered.stdout) as RecoveryReport;
    const byName = new Map(report.recovered.map((route) => [route.hostname, route]));
    expect(byName.get('real-restore.153.se')).toMatchObject({ project: 'consilio', status: 'active', basis: 'recovered' });
    // The forged MS route comes back without its target: not served.
    expect(byName.get('forged-ms.153.se')).toMatchObject({ project: 'meta-supervisor', status: 'adopted', target: null });
    expect(report.refused.find((entry) => entry.hostname === 'forged-ms.153.se')?.reason).toContain('cannot hold');
    // The record marked for a project that does not exist is not taken in.
    expect(byName.has('ghost-route.153.se')).toBe(false);
    expect(report.refused.find((entry) => entry.hostname === 'ghost-route.153.se')?.reason).toContain('ghostproject');
    const db = new BetterSqlite3(databasePath, { readonly: true });
    try {
      expect(db.prepare("SELECT COUNT(*) AS n FROM routes WHERE project = 'ghostproject'").get()).toEqual({ n: 0 });
      expect(db.prepare("SELECT service, status FROM routes WHERE hostname = 'forged-ms.153.se'").get()).toEqual({ service: null, status: 'adopted' });
    } finally {
      db.close();
    }
  }, 120_000);
});
