import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { rotateBackups } from '../../src/store/backup.ts';
import { BIN, sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * Backups and restore as an operator uses them: an online backup while the service runs and writes, a restore refused
 * while it runs and done when it is stopped (the previous database kept), the backups the schedule writes and rotates.
 */

const root = mkdtempSync(join(tmpdir(), 'tm-backup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function routesIn(file: string): string[] {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    return (db.prepare('SELECT hostname FROM routes ORDER BY hostname').all() as { hostname: string }[]).map((row) => row.hostname);
  } finally {
    db.close();
  }
}

/** The CLI, run asynchronously (the test's own servers must keep answering meanwhile). */
function cli(args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (status) => resolve({ status, output }));
  });
}

describe('backup and restore', () => {
  it('backs up online while serve runs, refuses to restore under it, restores once it is stopped', async () => {
    const dataDir = join(root, 'live');
    const serve = startCli(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
    const backupFile = join(root, 'taken-live.db');
    try {
      const info = await sandboxFileOf<{ pid: number; mcpUrl: string; tokens: Record<string, string> }>(serve, dataDir);
      const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
      const port = await call<{ port: number }>(consilio, 'port_allocate', { purpose: 'backup test' });
      // Nothing listens on the port: this file is about the MCP surface, so the route is published ahead of its service.
      expect((await call(consilio, 'tunnel_request_cname', { subdomain: 'kept', targetPort: port.data.port, publishAhead: true })).isError).toBe(false);
      await consilio.close();

      const backup = await cli(['backup', '--data-dir', dataDir, '--out', backupFile]);
      expect(backup.status, backup.output).toBe(0);
      expect(backup.output).toMatch(/wrote .*taken-live\.db \(\d+ bytes, \d+ ms\)/);
      expect(routesIn(backupFile)).toContain('kept.153.se');

      const refused = await cli(['restore', backupFile, '--data-dir', dataDir]);
      expect(refused.status).toBe(1);
      expect(refused.output).toContain('is running');
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
    // The database is lost; the backup brings the ledger back, and the lost one is not overwritten without a copy.
    writeFileSync(join(dataDir, 'tunnel-manager.db'), 'not a database any more');
    const restored = await cli(['restore', backupFile, '--data-dir', dataDir]);
    expect(restored.status, restored.output).toBe(0);
    expect(restored.output).toMatch(/restored .* \(\d+ routes, \d+ ms\); the previous database is kept as .*before-restore-/);
    expect(routesIn(join(dataDir, 'tunnel-manager.db'))).toContain('kept.153.se');
    expect(readdirSync(dataDir).some((name) => name.startsWith('tunnel-manager.db.before-restore-'))).toBe(true);
  }, 120_000);

  it('refuses a file that is not a Tunnel Manager database, and changes nothing', async () => {
    const dataDir = join(root, 'bad');
    const bogus = join(root, 'bogus.db');
    writeFileSync(bogus, 'hello');
    const result = await cli(['restore', bogus, '--data-dir', dataDir]);
    expect(result.status).toBe(1);
    expect(result.output).toContain('is not a Tunnel Manager database');
    expect(readdirSync(root)).not.toContain('bad');
  });
});

describe('the backup schedule', () => {
  it('writes a backup every interval and keeps the newest `backup.keep`', async () => {
    const env = await startTestService({ backup: { keep: 2 } }, { backupIntervalMs: 300 });
    try {
      const dir = join(env.dataDir, 'backups');
      await waitUntil(() => {
        try {
          return readdirSync(dir).filter((name) => name.endsWith('.db')).length >= 2 || undefined;
        } catch {
          return undefined;
        }
      }, 20_000, 'two scheduled backups');
      const names = readdirSync(dir).filter((name) => name.endsWith('.db'));
      expect(names.length).toBeLessThanOrEqual(2);
      expect(names.every((name) => /^tunnel-manager-\d{8}T\d{6}Z\.db$/.test(name))).toBe(true);
    } finally {
      await env.stop();
    }
  });

  it('rotation deletes only the oldest scheduled backups, never other files', () => {
    const dir = join(root, 'rotation');
    rmSync(dir, { recursive: true, force: true });
    const names = ['tunnel-manager-20261201T000000Z.db', 'tunnel-manager-20261202T000000Z.db', 'tunnel-manager-20261203T000000Z.db', 'by-hand.db'];
    mkdirSync(dir, { recursive: true });
    for (const name of names) writeFileSync(join(dir, name), '');
    expect(rotateBackups(dir, 2)).toEqual(['tunnel-manager-20261201T000000Z.db']);
    expect(readdirSync(dir).sort()).toEqual(['by-hand.db', 'tunnel-manager-20261202T000000Z.db', 'tunnel-manager-20261203T000000Z.db']);
  });
});
