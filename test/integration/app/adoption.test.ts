import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adoptExistingRecords } from '../../../src/app/effects/adoption.ts';
import { ZoneDirectory } from '../../../src/cloudflare/zones.ts';
import { FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES, FIXTURE_ZONES } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { DomainsRepository } from '../../../src/store/domains-repository.ts';
import { RoutesRepository } from '../../../src/store/routes-repository.ts';
import { startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

let sandbox: CloudflareSandbox;
let dir: string;
let db: Database;
beforeEach(async () => {
  sandbox = await startCloudflareSandbox();
  dir = mkdtempSync(join(tmpdir(), 'tm-cf-adopt-'));
  db = openDatabase(join(dir, 'tm.db')).db;
});
afterEach(async () => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
  await sandbox.close();
});

const PROJECTS = new Set(['meta-supervisor', 'consilio', 'odin', 'openhorizon', 'health-agent', 'shared-services']);

async function adopt(adoptOwner?: string) {
  const provider = sandbox.provider();
  const directory = new ZoneDirectory({ listZones: () => provider.listZones(), domains: new DomainsRepository(db), defaultZone: '153.se' });
  await directory.refresh();
  return adoptExistingRecords({ provider, routes: new RoutesRepository(db), zones: directory.list(), projects: PROJECTS, now: () => 42, ...(adoptOwner ? { adoptOwner } : {}) });
}

describe('adoption through the real SDK', () => {
  it('imports the four existing tunnel CNAMEs into the ledger and changes nothing in Cloudflare', async () => {
    const before = sandbox.emulator.state();
    const report = await adopt();

    expect(report.adopted.map((a) => a.hostname).sort()).toEqual([...FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES]);
    expect(report.scannedZones.sort()).toEqual(['153.se', 'horizon-lab.dev', 'odin-studio.net']);
    const routes = new RoutesRepository(db).list();
    expect(routes.map((r) => r.hostname)).toEqual([...FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES]);
    for (const route of routes) {
      expect(route).toMatchObject({
        zoneId: FIXTURE_ZONES.main.id,
        zoneName: '153.se',
        project: 'meta-supervisor',
        status: 'adopted',
        source: 'adopted',
        dnsCreated: false,
        createdAt: 42,
      });
      expect(route.dnsRecordId).toBe(before.records.find((r) => r.name === route.hostname)?.id);
    }

    expect(sandbox.emulator.state()).toEqual(before);
    expect(sandbox.emulator.requests().every((r) => r.method === 'GET')).toBe(true);
  });

  it('is idempotent: a second run adopts nothing and says why', async () => {
    await adopt();
    const again = await adopt();
    expect(again.adopted).toEqual([]);
    expect(again.skipped.map((s) => s.hostname).sort()).toEqual([...FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES]);
    expect(again.skipped[0]?.reason).toMatch(/already in the ledger \(owner meta-supervisor, status adopted\)/);
    expect(new RoutesRepository(db).count()).toBe(4);
  });

  it('uses the configured owner, and the marker owner for records of ours the ledger lost', async () => {
    await sandbox.provider().ensureCname({ zoneId: FIXTURE_ZONES.paid.id, hostname: 'lost.horizon-lab.dev', owner: 'openhorizon' });
    const report = await adopt('odin');
    const byHost = Object.fromEntries(report.adopted.map((a) => [a.hostname, a]));
    expect(byHost['chat.153.se']).toMatchObject({ owner: 'odin', basis: 'unmarked' });
    expect(byHost['lost.horizon-lab.dev']).toMatchObject({ owner: 'openhorizon', basis: 'marker' });
  });

  it('leaves foreign records out of the ledger', async () => {
    await adopt();
    const hostnames = new RoutesRepository(db).list().map((r) => r.hostname);
    expect(hostnames).not.toContain('www.153.se');
    expect(hostnames).not.toContain('status.horizon-lab.dev');
  });
});
