import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CloudflareZone } from '../../../src/cloudflare/cloudflare-types.ts';
import { ZoneDirectory } from '../../../src/cloudflare/zones.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { DomainsRepository } from '../../../src/store/domains-repository.ts';

let dir: string;
let db: Database;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-zone-dir-'));
  db = openDatabase(join(dir, 'tm.db')).db;
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const zone = (id: string, name: string): CloudflareZone => ({ id, name, status: 'active', plan: 'free', accountId: 'acc' });

async function directoryWith(zones: CloudflareZone[], defaultZone = '153.se', now = () => 1_000) {
  const directory = new ZoneDirectory({ listZones: async () => zones, domains: new DomainsRepository(db), defaultZone, now });
  await directory.refresh();
  return directory;
}

describe('ZoneDirectory', () => {
  it('resolves a hostname to the longest matching zone', async () => {
    const directory = await directoryWith([zone('a', '153.se'), zone('b', 'lab.153.se'), zone('c', 'x153.se')]);
    expect(directory.resolveZone('app.153.se').zoneId).toBe('a');
    expect(directory.resolveZone('app.lab.153.se').zoneId).toBe('b');
    expect(directory.resolveZone('LAB.153.se.').zoneId).toBe('b');
    expect(directory.resolveZone('153.se').zoneId).toBe('a');
  });

  it('says which zones exist when a hostname is in none of them', async () => {
    const directory = await directoryWith([zone('a', '153.se')]);
    expect(() => directory.resolveZone('app.example.com')).toThrowError(
      expect.objectContaining({ code: 'ZONE_NOT_FOUND', fix: expect.stringContaining('153.se'), details: expect.objectContaining({ zones: ['153.se'] }) }),
    );
  });

  it('qualifies bare names with the default zone, and fails clearly when the default zone is not in the account', async () => {
    expect((await directoryWith([zone('a', '153.se')])).qualify('App')).toBe('app.153.se');
    const missing = await directoryWith([zone('a', 'other.se')]);
    expect(() => missing.defaultZone()).toThrowError(expect.objectContaining({ code: 'ZONE_NOT_FOUND', message: expect.stringContaining('tunnel.defaultZone') }));
  });

  it('is stale when never refreshed or older than the given age', async () => {
    let now = 1_000;
    const directory = new ZoneDirectory({ listZones: async () => [zone('a', '153.se')], domains: new DomainsRepository(db), defaultZone: '153.se', now: () => now });
    expect(directory.isStale(60_000)).toBe(true);
    await directory.refresh();
    expect(directory.isStale(60_000)).toBe(false);
    now += 60_001;
    expect(directory.isStale(60_000)).toBe(true);
  });

  it('keeps the cache when a refresh fails', async () => {
    await directoryWith([zone('a', '153.se')]);
    const failing = new ZoneDirectory({ listZones: async () => Promise.reject(new Error('down')), domains: new DomainsRepository(db), defaultZone: '153.se' });
    await expect(failing.refresh()).rejects.toThrow('down');
    expect(failing.list().map((z) => z.name)).toEqual(['153.se']);
  });
});
