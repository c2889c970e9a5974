import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMachinesDoc } from '../../src/app/operations/machines-doc.ts';
import { isProcessRunning } from '../../src/cloudflared/process-identity.ts';
import { runCli, startCli, waitUntil } from '../helpers/cli.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-cli-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('tunnel-manager command', () => {
  it('prints help with the exit codes and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['serve', 'status', 'inspect', 'machines export', 'migrate']) expect(result.stdout).toContain(command);
    expect(result.stdout).toContain('Exit codes');
  });

  it('exits 2 on an unknown command or option, naming it', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const option = await runCli(['status', '--colour']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('--colour');
    // A real option, but not one of this command's: refused, naming what the command takes.
    const misplaced = await runCli(['status', '--edge-listen', '127.0.0.1:1']);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toContain('--edge-listen does not apply to `status` (it takes --json, --config, --data-dir)');
    const tokenLimit = await runCli(['token', 'new', '--limit', '3']);
    expect(tokenLimit.code).toBe(2);
    expect(tokenLimit.stderr).toContain('--limit does not apply to `token`');
  });

  it('status, inspect and config history on a data directory where nothing ran: exit 1 with the fix, nothing created', async () => {
    const empty = join(dir, 'never-ran');
    for (const args of [['status'], ['inspect'], ['config', 'history']]) {
      const result = await runCli([...args, '--data-dir', empty]);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr).toContain('No tunnel-manager database at');
      expect(result.stderr).toContain('tunnel-manager serve');
    }
    expect(existsSync(empty)).toBe(false);
  });

  it('exits 3 with the key and the fix on an invalid configuration', async () => {
    const file = join(dir, 'bad.yml');
    writeFileSync(file, 'health:\n  probeIntervalSeconds: -1\n');
    const result = await runCli(['status', '--config', file]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('error CONFIG_INVALID');
    expect(result.stderr).toContain('health.probeIntervalSeconds: found -1');
    expect(result.stderr).toContain('fix:');
  });

  it('exports every machine as JSON and as Mermaid', async () => {
    const json = await runCli(['machines', 'export', '--format', 'json']);
    expect(json.code).toBe(0);
    const machines = JSON.parse(json.stdout) as Record<string, { id: string; states: Record<string, unknown> }>;
    expect(machines.tunnel!.id).toBe('tunnel');
    expect(machines.supervisor!.id).toBe('supervisor');
    for (const state of ['stopped', 'starting', 'running', 'restarting', 'backoff']) expect(Object.keys(machines.tunnel!.states)).toContain(state);

    const out = join(dir, 'export');
    const mermaid = await runCli(['machines', 'export', '--format', 'mermaid', '--out', out]);
    expect(mermaid.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['ingress.machine.mmd', 'orphans.machine.mmd', 'route.machine.mmd', 'supervisor.machine.mmd', 'topology.machine.mmd', 'tunnel.machine.mmd', 'zones.machine.mmd']);
    expect(readFileSync(join(out, 'tunnel.machine.mmd'), 'utf8')).toMatch(/^stateDiagram-v2/);
  });

  it('docs/machines.md is the generated one (run `npm run docs:machines` when this fails)', () => {
    const committed = readFileSync(new URL('../../docs/machines.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderMachinesDoc());
  });

  it('migrate creates the database, then reports it up to date; a newer database exits 4', async () => {
    const dataDir = join(dir, 'migrate');
    const first = await runCli(['migrate', '--data-dir', dataDir]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('001_initial');
    const second = await runCli(['migrate', '--data-dir', dataDir]);
    expect(second.stdout).toContain('up to date');

    const db = new BetterSqlite3(join(dataDir, 'tunnel-manager.db'));
    db.pragma('user_version = 99');
    db.close();
    const refused = await runCli(['migrate', '--data-dir', dataDir]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('DATABASE_TOO_NEW');
  });

  it('call refuses arguments that are not key=value, and needs a token', async () => {
    const dataDir = join(dir, 'call');
    const malformed = await runCli(['call', 'tunnel_ping', 'oops', '--data-dir', dataDir, '--token', 'x']);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toContain('not KEY=VALUE');
    const noToken = await runCli(['call', 'tunnel_ping', '--data-dir', dataDir], { env: { TUNNEL_MANAGER_TOKEN: '' } });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('UNAUTHENTICATED');
  });

  it('token new prints a token whose hash token hash reproduces', async () => {
    const created = await runCli(['token', 'new']);
    const token = /token: (\S+)/.exec(created.stdout)![1]!;
    const hash = /tokenHash: (\S+)/.exec(created.stdout)![1]!;
    expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const again = await runCli(['token', 'hash'], { input: token });
    expect(again.stdout.trim()).toBe(hash);
  });

  it('serve runs the sandbox, prints where everything is, status and inspect read its state, SIGTERM stops it all', async () => {
    const dataDir = join(dir, 'serve');
    const config = join(dir, 'serve.yml');
    writeFileSync(config, [`dataDir: ${dataDir}`, 'cloudflared:', `  metricsAddress: 127.0.0.1:0`, 'health:', '  probeIntervalSeconds: 1', ''].join('\n'));

    // Nothing ran there yet: said so, exit 1, and no database is created by asking.
    const before = await runCli(['status', '--config', config]);
    expect(before.code).toBe(1);
    expect(before.stderr).toContain(`No tunnel-manager database at ${join(dataDir, 'tunnel-manager.db')}`);
    expect(existsSync(join(dataDir, 'tunnel-manager.db'))).toBe(false);

    const serve = startCli(['serve', '--config', config, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
    try {
      const status = await waitUntil(async () => {
        const result = await runCli(['status', '--config', config, '--json']);
        if (result.code !== 0) return undefined;
        const parsed = JSON.parse(result.stdout) as { state: string; pid: number | null };
        return parsed.state === 'running.up' ? parsed : undefined;
      }, 30_000, 'the tunnel to be up');
      expect(status.pid).toBeGreaterThan(0);
      expect(isProcessRunning(status.pid!)).toBe(true);
      expect(serve.output()).toContain('MCP (Streamable HTTP): http://127.0.0.1:');
      const sandbox = JSON.parse(readFileSync(join(dataDir, 'sandbox.json'), 'utf8')) as Record<string, unknown>;
      for (const key of ['mcpUrl', 'edgeUrl', 'cloudflareApiUrl', 'cloudflareApiToken', 'accountId', 'tunnelId', 'configPath', 'databasePath', 'tokens']) {
        expect(sandbox, key).toHaveProperty(key);
      }
      expect(Object.keys(sandbox.tokens as object)).toEqual(expect.arrayContaining(['meta-supervisor', 'consilio', 'odin', 'openhorizon', 'health-agent']));
      // Its output is a pipe (as the journal is under systemd): the tokens are in sandbox.json (0600), never printed.
      for (const token of Object.values(sandbox.tokens as Record<string, string>)) expect(serve.output()).not.toContain(token);
      expect(serve.output()).toContain(`MCP bearer tokens: in ${join(dataDir, 'sandbox.json')} (mode 0600`);
      expect(statSync(join(dataDir, 'sandbox.json')).mode & 0o777).toBe(0o600);

      const inspect = await runCli(['inspect', '--config', config, '--json']);
      const report = JSON.parse(inspect.stdout) as { actors: { path: string; state: string }[]; transitions: { actorId: string; toState: string }[] };
      expect(report.actors.map((a) => a.path)).toEqual(
        expect.arrayContaining(['supervisor', 'supervisor/tunnel', 'supervisor/topology', 'supervisor/zones', 'supervisor/ingress']),
      );
      expect(report.transitions.some((t) => t.actorId === 'tunnel' && t.toState === 'running.up')).toBe(true);
      const text = await runCli(['inspect', '--config', config]);
      expect(text.stdout).toContain('supervisor/tunnel: running.up');

      const second = await runCli(['serve', '--config', config]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain('already serves');

      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      await waitUntil(() => !isProcessRunning(status.pid!) || undefined, 10_000, 'cloudflared to stop');
      const firstLine = serve.output().split('\n').find((line) => line.startsWith('{'))!;
      expect(JSON.parse(firstLine)).toMatchObject({ msg: 'tunnel-manager starting' });
    } finally {
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    }
  }, 90_000);
});
