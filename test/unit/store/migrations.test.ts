import { mkdtempSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../src/store/database.ts';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../../src/store/migrations.ts';
import { TunnelManagerError } from '../../../src/errors.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-migrations-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const SEED_TABLES = [
  'routes',
  'tunnel_health',
  'domains',
  'docker_networks',
  'docker_containers',
  'container_networks',
  'container_ports',
  'audit_log',
];
const DESIGN_TABLES = ['actor_snapshots', 'actor_transitions', 'port_allocations', 'events'];

describe('migration runner', () => {
  it('creates every table on a fresh database file, with WAL and foreign keys on', () => {
    const { db, migration } = openDatabase(join(dir, 'fresh.db'));
    const latest = loadMigrations().at(-1)!.version;
    expect(migration).toMatchObject({ from: 0, to: latest });
    expect(migration.applied[0]).toBe('001_initial');
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    for (const table of [...SEED_TABLES, ...DESIGN_TABLES]) expect(tables).toContain(table);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('user_version', { simple: true })).toBe(latest);
    db.close();
  });

  it('is a no-op when run again', () => {
    const path = join(dir, 'again.db');
    openDatabase(path).db.close();
    const { db, migration } = openDatabase(path);
    expect(migration.applied).toEqual([]);
    expect(migration.from).toBe(migration.to);
    db.close();
  });

  it('refuses a database written by a newer version, and leaves it untouched', () => {
    const path = join(dir, 'newer.db');
    const raw = new BetterSqlite3(path);
    raw.pragma('user_version = 999');
    raw.close();
    let caught: unknown;
    try {
      openDatabase(path);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TunnelManagerError);
    expect((caught as TunnelManagerError).code).toBe('DATABASE_TOO_NEW');
    expect((caught as TunnelManagerError).message).toContain('999');
    expect((caught as TunnelManagerError).fix).toMatch(/release|backup/);
    const check = new BetterSqlite3(path);
    expect(check.pragma('user_version', { simple: true })).toBe(999);
    check.close();
  });

  it('rolls back a failing migration and keeps the previous version', () => {
    const migrationsDir = join(dir, 'migrations');
    mkdirSync(migrationsDir);
    copyFileSync(join(MIGRATIONS_DIR, '001_initial.sql'), join(migrationsDir, '001_initial.sql'));
    writeFileSync(join(migrationsDir, '002_broken.sql'), 'CREATE TABLE half_done (id INTEGER);\nTHIS IS NOT SQL;');
    const db = new BetterSqlite3(join(dir, 'broken.db'));
    expect(() => migrate(db, loadMigrations(migrationsDir))).toThrow(/002_broken/);
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    const halfDone = db.prepare("SELECT name FROM sqlite_master WHERE name = 'half_done'").get();
    expect(halfDone).toBeUndefined();
    db.close();
  });

  it('rejects migration files with a gap in their numbers', () => {
    const migrationsDir = join(dir, 'gap');
    mkdirSync(migrationsDir);
    writeFileSync(join(migrationsDir, '001_a.sql'), 'SELECT 1;');
    writeFileSync(join(migrationsDir, '003_c.sql'), 'SELECT 1;');
    expect(() => loadMigrations(migrationsDir)).toThrow(/expected 002/);
  });
});
