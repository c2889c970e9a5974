import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { DomainsRepository } from '../../../src/store/domains-repository.ts';

let dir: string;
let db: Database;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-domains-'));
  db = openDatabase(join(dir, 'tm.db')).db;
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const zone = (zoneId: string, name: string, plan = 'free') => ({ zoneId, name, status: 'active', plan, accountId: 'acc' });

describe('DomainsRepository', () => {
  it('replaces the cache as a whole, reporting added and removed zones', () => {
    const domains = new DomainsRepository(db);
    expect(domains.lastRefreshedAt()).toBeNull();
    expect(domains.replaceAll([zone('z1', '153.se'), zone('z2', 'Old.se')], 10)).toEqual({ added: ['153.se', 'old.se'], removed: [] });
    expect(domains.replaceAll([zone('z1', '153.se', 'pro'), zone('z3', 'new.se')], 20)).toEqual({ added: ['new.se'], removed: ['old.se'] });
    expect(domains.list().map((d) => [d.name, d.plan, d.refreshedAt])).toEqual([
      ['153.se', 'pro', 20],
      ['new.se', 'free', 20],
    ]);
    expect(domains.lastRefreshedAt()).toBe(20);
  });

  it('finds zones by id and by name, case-insensitively', () => {
    const domains = new DomainsRepository(db);
    domains.replaceAll([zone('z1', '153.se')], 1);
    expect(domains.findByName('153.SE')?.zoneId).toBe('z1');
    expect(domains.findById('z1')?.name).toBe('153.se');
    expect(domains.findById('nope')).toBeUndefined();
  });

  it('takes a zone that was re-created under a new id with the same name', () => {
    const domains = new DomainsRepository(db);
    domains.replaceAll([zone('z1', '153.se')], 1);
    domains.replaceAll([zone('z9', '153.se')], 2);
    expect(domains.findByName('153.se')?.zoneId).toBe('z9');
  });
});
