import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCloudflareEmulator, type CloudflareEmulator } from '../../src/sandbox/cloudflare-emulator/index.ts';
import { BIN, sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';

/**
 * `tunnel-manager doctor` as an operator runs it: a clean sandbox passes; each thing broken on purpose is reported
 * as a problem with its fix, and the exit code says so. Production checks run against the Cloudflare API emulator,
 * with tokens of full and of partial permissions.
 */

interface Check {
  name: string;
  status: 'ok' | 'warning' | 'problem' | 'skipped';
  detail: string;
  fix?: string;
}

let emulator: CloudflareEmulator;
const LIMITED_TOKEN = 'limited-token-zone-read-only-000000000000';
const root = mkdtempSync(join(tmpdir(), 'tm-doctor-'));

beforeAll(async () => {
  emulator = await startCloudflareEmulator({ host: '127.0.0.1', port: 0, extraTokens: [{ token: LIMITED_TOKEN, scopes: ['zone:read'] }] });
});
afterAll(async () => {
  await emulator?.close();
  rmSync(root, { recursive: true, force: true });
});

let counter = 0;
/**
 * Runs doctor --json on a fresh data dir with the given configuration lines; answers its exit code and checks.
 * Asynchronously: the emulator answers from this process, so its event loop must keep running meanwhile.
 */
async function doctor(
  configLines: string[],
  env: NodeJS.ProcessEnv = {},
  /** Changes the data directory (the configuration file is in it) before doctor runs. */
  prepare?: (dataDir: string, configFile: string) => void,
  options: { configPath?: string; as?: { uid: number; gid: number }; args?: string[] } = {},
): Promise<{ status: number | null; checks: Check[]; text: string }> {
  counter += 1;
  const dataDir = join(root, `run-${counter}`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const configFile = join(dataDir, 'config.yml');
  writeFileSync(configFile, [`cloudflared:`, `  configPath: ${options.configPath ?? join(dataDir, 'cloudflared', 'config.yml')}`, ...configLines, ''].join('\n'));
  prepare?.(dataDir, configFile);
  return doctorOn(['--config', configFile, '--data-dir', dataDir, ...(options.args ?? [])], env, options.as);
}

/** `doctor --json` with these arguments (as another user when `as` says so). */
async function doctorOn(args: string[], env: NodeJS.ProcessEnv = {}, as?: { uid: number; gid: number }): Promise<{ status: number | null; checks: Check[]; text: string }> {
  const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'doctor', '--json', ...args], { env: { ...process.env, TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: '', ...env }, ...as }, (error, stdout, stderr) =>
      resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  const parsed = JSON.parse(result.stdout || '{"checks":[]}') as { checks: Check[] };
  return { status: result.status, checks: parsed.checks, text: `${result.stdout}${result.stderr}` };
}

/** A TCP listener of this test process on a free port: "another program" to doctor. */
async function squat(): Promise<{ port: number; close: () => void }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

const find = (checks: Check[], name: string) => checks.find((c) => c.name === name);
const problems = (checks: Check[]) => checks.filter((c) => c.status === 'problem').map((c) => c.name);

function production(extra: string[] = []): string[] {
  return [
    '  command: [/bin/true]',
    'cloudflare:',
    `  apiBaseUrl: ${emulator.apiBaseUrl}`,
    `  accountId: ${emulator.accountId}`,
    ...extra,
  ];
}

describe('tunnel-manager doctor', () => {
  it('finds nothing wrong with a fresh sandbox, and exits 0', async () => {
    // Port 0, as serve would be given: other sandboxes on this machine may hold 8787 and 8790.
    const run = await doctor([], {}, undefined, { args: ['--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0'] });
    expect(run.status, run.text).toBe(0);
    expect(problems(run.checks)).toEqual([]);
    expect(find(run.checks, 'cloudflared')?.detail).toContain('stand-in');
  });

  it('a data directory others may write: a problem with chmod 700 as the fix, exit 1', async () => {
    const run = await doctor([], {}, (dir) => chmodSync(dir, 0o777));
    expect(run.status).toBe(1);
    expect(find(run.checks, 'data directory')).toMatchObject({ status: 'problem', fix: expect.stringContaining('chmod 700') });
  });

  it('a metrics address another program holds: a problem naming it, with the ss command', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const { port } = squatter.address() as { port: number };
    try {
      const run = await doctor([`  metricsAddress: 127.0.0.1:${port}`]);
      expect(run.status).toBe(1);
      expect(find(run.checks, 'cloudflared.metricsAddress')).toMatchObject({ status: 'problem', fix: expect.stringContaining(`sport = :${port}`) });
    } finally {
      squatter.close();
    }
  });

  it("another program on mcp.listen is not called this manager's, even with a live pid in the pidfile (issue 27, item 7)", async () => {
    const squatter = await squat();
    // A live process that is not this data directory's manager (a stale pidfile whose pid was reused, say).
    const stranger = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const run = await doctor(
        production(['mcp:', `  listen: 127.0.0.1:${squatter.port}`]),
        { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: emulator.token },
        (dir) => writeFileSync(join(dir, 'tunnel-manager.pid'), `${stranger.pid}\n`),
      );
      const mcp = find(run.checks, 'mcp.listen');
      expect(mcp, run.text).toMatchObject({ status: 'problem', fix: expect.stringContaining(`sport = :${squatter.port}`) });
      expect(mcp?.detail).not.toContain('this manager');
      // Named: the test process holds it.
      expect(mcp?.detail).toContain(`pid ${process.pid}`);
      expect(run.status).toBe(1);
    } finally {
      stranger.kill('SIGKILL');
      squatter.close();
    }
  });

  it("in the sandbox, checks the sandbox's actual addresses (sandbox.json), each held by this manager, not 9464/20241 (issue 27, item 7)", async () => {
    const dataDir = join(root, 'running-sandbox');
    const serve = startCli(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
    // Another program on the configured mcp.listen, where this manager does not listen.
    const squatter = await squat();
    try {
      const info = await sandboxFileOf<{ pid: number; mcpUrl: string; edgeUrl: string; metricsUrl: string }>(serve, dataDir);
      const cloudflared = await waitUntil(
        () => {
          try {
            return JSON.parse(readFileSync(join(dataDir, 'cloudflared', 'cloudflared.pid'), 'utf8')) as { pid: number; metricsAddress: string };
          } catch {
            return undefined;
          }
        },
        30_000,
        'cloudflared to be started',
      );
      const configFile = join(root, 'running-sandbox.yml');
      writeFileSync(configFile, ['mcp:', `  listen: 127.0.0.1:${squatter.port}`, ''].join('\n'));
      const run = await doctorOn(['--config', configFile, '--data-dir', dataDir]);
      const host = (url: string) => new URL(url).host;
      expect(find(run.checks, 'mcp.listen'), run.text).toMatchObject({ status: 'ok', detail: `${host(info.mcpUrl)} is this manager (pid ${info.pid})` });
      expect(find(run.checks, 'sandbox edge')).toMatchObject({ status: 'ok', detail: `${host(info.edgeUrl)} is this manager (pid ${info.pid})` });
      expect(find(run.checks, 'metrics.listen')).toMatchObject({ status: 'ok', detail: `${host(info.metricsUrl)} is this manager (pid ${info.pid})` });
      expect(find(run.checks, 'cloudflared.metricsAddress')).toMatchObject({
        status: 'ok',
        detail: `${cloudflared.metricsAddress} is cloudflared, started by this data directory's manager (pid ${cloudflared.pid})`,
      });
      for (const check of run.checks) {
        expect(check.detail, check.name).not.toMatch(/:9464\b|:20241\b/);
        expect(check.detail, check.name).not.toContain(`:${squatter.port}`);
      }
      expect(run.status, run.text).toBe(0);
    } finally {
      squatter.close();
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
  }, 90_000);

  it('a held git lock on config.yml\'s history: a problem with the command that clears it', async () => {
    const run = await doctor([], {}, (dir) => {
      mkdirSync(join(dir, 'cloudflared', '.git'), { recursive: true });
      spawnSync('git', ['init', '-q', join(dir, 'cloudflared')]);
      writeFileSync(join(dir, 'cloudflared', '.git', 'index.lock'), '');
    });
    expect(find(run.checks, 'config.yml history (git)')).toMatchObject({ status: 'problem', fix: expect.stringContaining('index.lock') });
  });

  it('no Docker socket: a warning, not a failure (host targets still work)', async () => {
    const run = await doctor(['docker:', '  socketPath: /nonexistent/docker.sock']);
    expect(find(run.checks, 'Docker')).toMatchObject({ status: 'warning' });
    expect(run.status).toBe(0);
  });

  it('production with a good token: API, permissions and clock all check out', async () => {
    const run = await doctor(production(), { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: emulator.token });
    for (const name of ['Cloudflare API token', 'Cloudflare API reachable, token active', 'zones: read', 'DNS records: read', 'tunnel configuration: read', 'analytics: read (tunnel_get_traffic)', 'clock']) {
      expect(find(run.checks, name)?.status, `${name}: ${JSON.stringify(find(run.checks, name))}`).toBe('ok');
    }
    // No credentials file configured: cloudflared must find its own (a warning).
    expect(find(run.checks, 'tunnel credentials')?.status).toBe('warning');
  });

  it('production without a token: a problem saying where to put it', async () => {
    const run = await doctor(production());
    expect(run.status).toBe(1);
    expect(find(run.checks, 'Cloudflare API token')).toMatchObject({
      status: 'problem',
      detail: expect.stringContaining('$CREDENTIALS_DIRECTORY is not set'),
      fix: expect.stringContaining('LoadCredential=cloudflare_api_token:tunnel-manager.cloudflare_api_token'),
    });
  });

  it('under systemd with no credential file to load: a problem naming the missing file and how to make it', async () => {
    const credentials = mkdtempSync(join(root, 'credentials-'));
    const run = await doctor(production(), { CREDENTIALS_DIRECTORY: credentials });
    expect(run.status).toBe(1);
    expect(find(run.checks, 'Cloudflare API token')).toMatchObject({
      status: 'problem',
      detail: expect.stringContaining('the credential file is missing'),
      fix: expect.stringContaining('sudo install -m 0600 /dev/stdin /etc/credstore/tunnel-manager.cloudflare_api_token'),
    });
  });

  it('config.yml\'s directory missing outside the data directory (/etc/cloudflared): a problem with the command that makes it', async () => {
    const missing = join(root, 'etc-cloudflared-missing');
    const run = await doctor(production(), { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: emulator.token }, undefined, { configPath: join(missing, 'config.yml') });
    expect(run.status).toBe(1);
    expect(find(run.checks, 'config.yml directory')).toMatchObject({ status: 'problem', fix: expect.stringContaining(`sudo install -d -o root -g root -m 0750 ${missing}`) });
  });

  it('a configuration file or directory others may change: a problem with the chmod for each', async () => {
    const file = await doctor([], {}, (_, configFile) => chmodSync(configFile, 0o666));
    expect(find(file.checks, 'configuration files')).toMatchObject({ status: 'problem', fix: expect.stringMatching(/^sudo chmod 640 .*config\.yml$/) });
    expect(file.status).toBe(1);
    const directory = await doctor([], {}, (dataDir) => chmodSync(dataDir, 0o775));
    expect(find(directory.checks, 'configuration files')).toMatchObject({ status: 'problem', fix: expect.stringMatching(/^sudo chmod 750 /) });
  });

  it('Docker\'s socket refusing the user (not in its group): a problem naming the group and the usermod', async () => {
    // A socket of root's group, and doctor run as nobody: the user the unit runs as, before it joined Docker's group.
    const socketPath = join(root, 'docker.sock');
    const socket = createServer((connection) => connection.end('HTTP/1.1 200 OK\r\n\r\nOK'));
    await new Promise<void>((resolve) => socket.listen(socketPath, resolve));
    chmodSync(socketPath, 0o660);
    chmodSync(root, 0o755);
    const nobody = { uid: 65534, gid: 65534 };
    try {
      const run = await doctor(['docker:', `  socketPath: ${socketPath}`], {}, (dataDir) => chownSync(dataDir, nobody.uid, nobody.gid), { as: nobody });
      expect(find(run.checks, 'Docker'), run.text).toMatchObject({
        status: 'problem',
        detail: expect.stringContaining("permission denied: nobody is not in the socket's group root (gid 0)"),
        fix: expect.stringContaining('sudo usermod -aG root nobody, then restart the service'),
      });
    } finally {
      socket.close();
      chmodSync(root, 0o700);
    }
  });

  it('a token without DNS and tunnel permissions: each missing permission is a problem with the permission to add', async () => {
    const run = await doctor(production(), { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: LIMITED_TOKEN });
    expect(find(run.checks, 'zones: read')?.status).toBe('ok');
    expect(find(run.checks, 'DNS records: read')).toMatchObject({ status: 'problem', fix: expect.stringContaining('DNS:Edit') });
    expect(find(run.checks, 'tunnel configuration: read')).toMatchObject({ status: 'problem', fix: expect.stringContaining('Cloudflare Tunnel:Read') });
    // Analytics is optional (only tunnel_get_traffic needs it): a warning naming the permission, not a problem.
    expect(find(run.checks, 'analytics: read (tunnel_get_traffic)')).toMatchObject({ status: 'warning', detail: expect.stringContaining('authz'), fix: expect.stringContaining('Analytics:Read') });
  });

  it('an API that does not answer: a problem naming the address', async () => {
    const run = await doctor(['  command: [/bin/true]', 'cloudflare:', '  apiBaseUrl: http://127.0.0.1:9/client/v4'], { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: emulator.token });
    expect(find(run.checks, 'Cloudflare API reachable, token active')).toMatchObject({ status: 'problem', detail: expect.stringContaining('127.0.0.1:9') });
  });

  it('a missing cloudflared and a missing credentials file: problems with the way to fix each', async () => {
    const run = await doctor(
      ['  command: [/nonexistent/cloudflared]', '  credentialsFile: /nonexistent/creds.json', 'cloudflare:', `  apiBaseUrl: ${emulator.apiBaseUrl}`, `  accountId: ${emulator.accountId}`],
      { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: emulator.token },
    );
    expect(run.status).toBe(1);
    expect(find(run.checks, 'cloudflared')).toMatchObject({ status: 'problem', fix: expect.stringContaining('cloudflared.command') });
    expect(find(run.checks, 'tunnel credentials')).toMatchObject({ status: 'problem', fix: expect.stringContaining('cloudflared tunnel create') });
  });
});
