import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dueForRemoval, scanOrphans, type OrphanPolicy } from '../../../src/app/effects/orphan-effects.ts';
import { PortManager } from '../../../src/ports/port-manager.ts';
import { FIXTURE_ZONES } from '../../../src/sandbox/cloudflare-emulator/fixture.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { PortsRepository } from '../../../src/store/ports-repository.ts';
import { RoutesRepository, type NewRoute } from '../../../src/store/routes-repository.ts';
import { failureOf, startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

/**
 * The orphan scan against the Cloudflare emulator (real SDK over HTTP) and a real SQLite ledger:
 * each reason found, each owner told once, a fix undoes the flag, a failed listing changes nothing.
 */

const HOUR = 3_600_000;
const ZONE = FIXTURE_ZONES.main;
const PROJECTS = [
  { name: 'meta-supervisor', ports: { from: 3000, to: 3099 } },
  { name: 'consilio', ports: { from: 3100, to: 3199 } },
];

let dir: string;
let sandbox: CloudflareSandbox;
let close: () => void;
let routes: RoutesRepository;
let ports: PortManager;
let published: { kind: string; project: string; data: Record<string, unknown> }[];
let clock: number;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tm-orphans-'));
  const { db } = openDatabase(join(dir, 'state.db'));
  close = () => db.close();
  routes = new RoutesRepository(db);
  ports = new PortManager(new PortsRepository(db), PROJECTS);
  sandbox = await startCloudflareSandbox();
  published = [];
  clock = Date.parse('2026-11-22T12:00:00Z');
});

afterEach(async () => {
  close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

function route(hostname: string, project: string, targetPort: number | null, fields: Partial<NewRoute> = {}): void {
  routes.insert({
    hostname, zoneId: ZONE.id, zoneName: ZONE.name, project, targetPort, service: targetPort === null ? null : `http://localhost:${targetPort}`,
    targetReason: null, path: null, originRequest: null, dnsRecordId: null, dnsCreated: true, status: 'active', source: 'request', expiresAt: null, at: clock,
    ...fields,
  });
}

const scan = (policy: OrphanPolicy = { projectRemovedGraceHours: 24 }) =>
  scanOrphans({
    routes,
    allocations: () => ports.list(),
    projects: () => new Set(PROJECTS.map((p) => p.name)),
    provider: sandbox.provider(),
    policy,
    publish: (kind, project, data) => void published.push({ kind, project, data }),
    now: () => clock,
  });

async function world(): Promise<void> {
  const provider = sandbox.provider();
  ports.allocate('consilio', 'web', 3100);
  ports.allocate('consilio', 'api', 3101);
  for (const [hostname, owner] of [['app', 'consilio'], ['loose', 'consilio'], ['retired', 'old-project']] as const) {
    await provider.ensureCname({ zoneId: ZONE.id, hostname: `${hostname}.153.se`, owner });
  }
  route('app.153.se', 'consilio', 3100); // record, port: fine
  route('chat.153.se', 'meta-supervisor', null, { status: 'adopted', source: 'adopted', dnsCreated: false }); // pre-existing record
  route('gone.153.se', 'consilio', 3101); // no record
  route('loose.153.se', 'consilio', 3102); // port never allocated
  route('retired.153.se', 'old-project', 3150); // project left the configuration
  route('busy.153.se', 'consilio', 3199, { status: 'pending' }); // a saga owns it: not looked at
}

describe('orphan scan', () => {
  it('finds each kind of orphan, flags it in the ledger and tells its owner, with what to do', async () => {
    await world();
    const result = await scan();
    expect(result.routes).toBe(5);
    expect(result.zonesChecked).toEqual(['153.se']);
    expect(result.orphans.map((o) => [o.hostname, o.reason])).toEqual([
      ['gone.153.se', 'record-missing'],
      ['loose.153.se', 'port-unallocated'],
      ['retired.153.se', 'project-removed'],
    ]);
    expect(result.newlyOrphaned).toEqual(['gone.153.se', 'loose.153.se', 'retired.153.se']);
    const byHost = Object.fromEntries(result.orphans.map((o) => [o.hostname, o]));
    expect(byHost['loose.153.se']!.fix).toContain('port_allocate { "port": 3102');
    expect(byHost['gone.153.se']!.fix).toContain('tunnel_delete_cname { "hostname": "gone.153.se" }');
    expect(byHost['retired.153.se']!.fix).toContain('2026-11-23T12:00:00.000Z');

    expect(routes.find('retired.153.se')).toMatchObject({ orphanReason: 'project-removed', orphanedSince: clock });
    expect(routes.find('app.153.se')).toMatchObject({ orphanReason: null, orphanedSince: null });
    expect(routes.find('busy.153.se')).toMatchObject({ orphanReason: null });
    expect(published.map((e) => [e.kind, e.project, e.data.hostname])).toEqual([
      ['route.orphaned', 'consilio', 'gone.153.se'],
      ['route.orphaned', 'consilio', 'loose.153.se'],
      ['route.orphaned', 'old-project', 'retired.153.se'],
    ]);
    expect(published[2]!.data).toMatchObject({ reason: 'project-removed', removeAt: '2026-11-23T12:00:00.000Z' });
  });

  it('tells each owner once: a later scan keeps the flags and their time, and a fix resolves the orphan', async () => {
    await world();
    await scan();
    published = [];
    clock += HOUR;
    const again = await scan();
    expect(again.newlyOrphaned).toEqual([]);
    expect(published).toEqual([]);
    expect(again.orphans.find((o) => o.hostname === 'retired.153.se')?.since).toBe('2026-11-22T12:00:00.000Z');

    ports.allocate('consilio', 'api again', 3102);
    const fixed = await scan();
    expect(fixed.resolved).toEqual(['loose.153.se']);
    expect(routes.find('loose.153.se')).toMatchObject({ orphanReason: null, orphanedSince: null });
    expect(published).toEqual([{ kind: 'route.orphan_resolved', project: 'consilio', data: { hostname: 'loose.153.se', was: 'port-unallocated' } }]);
  });

  it('a removed project\'s routes are due for removal once the grace period is over, and never with it off', async () => {
    await world();
    await scan();
    const due = (policy: OrphanPolicy, at: number) => dueForRemoval(routes.list(), policy, at).map((r) => r.hostname);
    expect(due({ projectRemovedGraceHours: 24 }, clock + 24 * HOUR - 1)).toEqual([]);
    expect(due({ projectRemovedGraceHours: 24 }, clock + 24 * HOUR)).toEqual(['retired.153.se']);
    expect(due({ projectRemovedGraceHours: 0 }, clock)).toEqual(['retired.153.se']);
    expect(due({ projectRemovedGraceHours: null }, clock + 1_000 * HOUR)).toEqual([]);
  });

  it('a zone gone from the account makes its routes orphans instead of stopping the scan', async () => {
    await world();
    route('shop.closed.example', 'consilio', 3100, { zoneId: '0000000000000000000000000000dead', zoneName: 'closed.example' });
    const result = await scan();
    const shop = result.orphans.find((o) => o.hostname === 'shop.closed.example');
    expect(shop).toMatchObject({ reason: 'record-missing', detail: expect.stringContaining('no longer in the Cloudflare account') });
    expect(result.orphans.map((o) => o.hostname)).toEqual(['gone.153.se', 'loose.153.se', 'retired.153.se', 'shop.closed.example']);
  });

  it('changes nothing when a zone cannot be listed', async () => {
    await world();
    sandbox.emulator.setFaults([{ route: 'GET /zones/:zone/dns_records', status: 503 }]);
    const error = await failureOf(scan());
    expect(error.code).toBe('CLOUDFLARE_UNAVAILABLE');
    expect(routes.list().filter((r) => r.orphanReason !== null)).toEqual([]);
    expect(published).toEqual([]);
  });
});

describe('unledgered records', () => {
  it('a record marked as ours on our tunnel with no row is adopted for the project it names and told to it, never deleted', async () => {
    await world();
    // Made by a Tunnel Manager for consilio, but its ledger row is gone (e.g. a database restored from an old backup).
    await sandbox.provider().ensureCname({ zoneId: ZONE.id, hostname: 'lost.153.se', owner: 'consilio' });
    // And one for a project that is not configured.
    await sandbox.provider().ensureCname({ zoneId: ZONE.id, hostname: 'ghost.153.se', owner: 'ghostproject' });
    const before = sandbox.emulator.state().records.filter((record) => record.name === 'lost.153.se');
    expect(before).toHaveLength(1);
    const ghost = sandbox.emulator.state().records.find((record) => record.name === 'ghost.153.se')!;

    const result = await scan();
    expect(result.unledgered).toEqual([
      { hostname: 'ghost.153.se', zone: '153.se', recordId: ghost.id, owner: 'ghostproject', adopted: false, fix: expect.stringContaining('Cloudflare dashboard') },
      { hostname: 'lost.153.se', zone: '153.se', recordId: before[0]!.id, owner: 'consilio', adopted: true, fix: expect.stringContaining('tunnel_delete_cname') },
    ]);
    expect(published.filter((event) => event.kind === 'record.unledgered')).toEqual([
      { kind: 'record.unledgered', project: '*', data: expect.objectContaining({ hostname: 'ghost.153.se', adopted: false }) },
      { kind: 'record.unledgered', project: 'consilio', data: expect.objectContaining({ hostname: 'lost.153.se', recordId: before[0]!.id, adopted: true }) },
    ]);
    // Every tool sees it now: an adopted route of consilio, with its record, serving nothing. The unconfigured project gets no row.
    expect(routes.find('lost.153.se')).toMatchObject({ project: 'consilio', status: 'adopted', source: 'adopted', dnsRecordId: before[0]!.id, service: null });
    expect(routes.find('ghost.153.se')).toBeUndefined();
    // Records in the ledger, foreign records and the adopted ones are not reported; nothing is deleted.
    expect(result.unledgered.map((entry) => entry.hostname)).not.toContain('app.153.se');
    expect(sandbox.emulator.state().records.filter((record) => record.name === 'lost.153.se')).toEqual(before);

    // Once the ledger has it, it is no longer reported.
    expect((await scan()).unledgered.map((entry) => entry.hostname)).toEqual(['ghost.153.se']);
  });
});
