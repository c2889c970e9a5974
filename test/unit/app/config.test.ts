import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labelProjectsOf, loadConfig, parseConfig } from '../../../src/app/config/config.ts';
import { TunnelManagerError } from '../../../src/errors.ts';

function problemsOf(raw: unknown): { key: string; found: unknown; expected: string }[] {
  try {
    parseConfig(raw, 'test.yml');
  } catch (error) {
    expect(error).toBeInstanceOf(TunnelManagerError);
    expect((error as TunnelManagerError).code).toBe('CONFIG_INVALID');
    return (error as TunnelManagerError).details.problems as { key: string; found: unknown; expected: string }[];
  }
  throw new Error('expected the configuration to be refused');
}

describe('configuration', () => {
  it('lets every project supervisor declare routes by label by default, never the meta-supervisor; labels.projects names project supervisors only', () => {
    expect([...labelProjectsOf(parseConfig({}))].sort()).toEqual(['consilio', 'health-agent', 'odin', 'openhorizon', 'shared-services']);
    expect([...labelProjectsOf(parseConfig({ labels: { projects: ['odin'] } }))]).toEqual(['odin']);
    expect(problemsOf({ labels: { projects: ['meta-supervisor', 'ghost'] } })).toEqual([
      expect.objectContaining({ key: 'labels.projects[0]', expected: expect.stringContaining('labels never act for it') }),
      expect.objectContaining({ key: 'labels.projects[1]', expected: expect.stringContaining('no project named ghost') }),
    ]);
  });

  it('runs on embedded defaults with no file at all', () => {
    const config = loadConfig({ env: {} });
    expect(config.source).toBeNull();
    expect(config.tunnel.defaultZone).toBe('153.se');
    expect(config.tunnel.id).toBe('fe2ec8b5-790f-4973-ad07-e03a4e4dd45b');
    expect(config.health.probeIntervalSeconds).toBe(30);
    expect(config.restart.backoffSeconds).toEqual([5, 15, 30, 60, 300]);
    expect(config.restart.stopGraceSeconds).toBe(10);
    expect(config.projects.map((p) => p.name)).toContain('meta-supervisor');
    expect(config.projects.find((p) => p.name === 'consilio')?.ports).toEqual({ from: 3100, to: 3199 });
    expect(config.databasePath).toMatch(/data\/tunnel-manager\.db$/);
    expect(config.cloudflared.configPath).toMatch(/data\/cloudflared\/config\.yml$/);
  });

  it('reads the file named by TUNNEL_MANAGER_CONFIG', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-config-'));
    try {
      const file = join(dir, 'tm.yml');
      writeFileSync(file, 'health:\n  probeIntervalSeconds: 5\nmcp:\n  listen: 127.0.0.1:9999\n');
      const config = loadConfig({ env: { TUNNEL_MANAGER_CONFIG: file } });
      expect(config.source).toBe(file);
      expect(config.health.probeIntervalSeconds).toBe(5);
      expect(config.mcp.listen).toBe('127.0.0.1:9999');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes the data directory from --data-dir, else TUNNEL_MANAGER_DATA_DIR, else the file, else ./data', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-config-'));
    try {
      const file = join(dir, 'tm.yml');
      writeFileSync(file, `dataDir: ${join(dir, 'from-file')}\n`);
      const env = { TUNNEL_MANAGER_DATA_DIR: join(dir, 'from-env') };
      expect(loadConfig({ path: file, env, dataDir: join(dir, 'from-option') }).databasePath).toBe(join(dir, 'from-option', 'tunnel-manager.db'));
      expect(loadConfig({ path: file, env }).databasePath).toBe(join(dir, 'from-env', 'tunnel-manager.db'));
      expect(loadConfig({ env }).cloudflared.configPath).toBe(join(dir, 'from-env', 'cloudflared', 'config.yml'));
      expect(loadConfig({ path: file, env: {} }).dataDir).toBe(join(dir, 'from-file'));
      expect(loadConfig({ path: file, env: { TUNNEL_MANAGER_DATA_DIR: '' } }).dataDir).toBe(join(dir, 'from-file'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves metrics on 127.0.0.1:9464 by default, on a free port by default in the sandbox, and where it is told in both', () => {
    const production = { cloudflare: { apiBaseUrl: 'https://api.cloudflare.com/client/v4' } };
    expect(parseConfig(production).metrics.listen).toBe('127.0.0.1:9464');
    expect(parseConfig({}).metrics.listen).toBe('127.0.0.1:0');
    // Given as the production default, in the sandbox: a container's health check asks exactly there.
    expect(parseConfig({ metrics: { listen: '127.0.0.1:9464' } }).metrics.listen).toBe('127.0.0.1:9464');
    expect(parseConfig({ ...production, metrics: { listen: '127.0.0.1:0' } }).metrics.listen).toBe('127.0.0.1:0');
    expect(parseConfig({ metrics: { listen: 'off' } }).metrics.listen).toBe('off');
  });

  it('refuses a named file that does not exist instead of falling back', () => {
    expect(() => loadConfig({ path: '/nonexistent/tm.yml', env: {} })).toThrow(/does not exist/);
  });

  it('refuses broken YAML with the position', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-config-'));
    try {
      const file = join(dir, 'bad.yml');
      writeFileSync(file, 'health: [unclosed\n');
      expect(() => loadConfig({ path: file, env: {} })).toThrow(/not valid YAML/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const cases: { name: string; raw: unknown; key: string; found: unknown; expected: RegExp }[] = [
    { name: 'account id', raw: { cloudflare: { accountId: 'xyz' } }, key: 'cloudflare.accountId', found: 'xyz', expected: /32 hex/ },
    { name: 'api base url', raw: { cloudflare: { apiBaseUrl: 'not a url' } }, key: 'cloudflare.apiBaseUrl', found: 'not a url', expected: /URL/ },
    { name: 'tunnel id', raw: { tunnel: { id: 'abc' } }, key: 'tunnel.id', found: 'abc', expected: /UUID/ },
    { name: 'default zone', raw: { tunnel: { defaultZone: 'Not A Zone' } }, key: 'tunnel.defaultZone', found: 'Not A Zone', expected: /zone name/ },
    { name: 'driver', raw: { cloudflared: { driver: 'kubernetes' } }, key: 'cloudflared.driver', found: 'kubernetes', expected: /"child", "spawn", "systemd", "docker"/ },
    { name: 'metrics address', raw: { cloudflared: { metricsAddress: 'localhost' } }, key: 'cloudflared.metricsAddress', found: 'localhost', expected: /HOST:PORT/ },
    { name: 'probe interval', raw: { health: { probeIntervalSeconds: 0 } }, key: 'health.probeIntervalSeconds', found: 0, expected: /greater than 0/ },
    { name: 'probe interval type', raw: { health: { probeIntervalSeconds: '30s' } }, key: 'health.probeIntervalSeconds', found: '30s', expected: /number/ },
    { name: 'backoff', raw: { restart: { backoffSeconds: [] } }, key: 'restart.backoffSeconds', found: [], expected: /non-empty list/ },
    { name: 'grace', raw: { restart: { stopGraceSeconds: -1 } }, key: 'restart.stopGraceSeconds', found: -1, expected: /greater than 0/ },
    { name: 'project role', raw: { projects: [{ name: 'odin', role: 'admin', ports: '3300-3399' }] }, key: 'projects[0].role', found: 'admin', expected: /"ps", "ms"/ },
    { name: 'project range', raw: { projects: [{ name: 'odin', role: 'ps', ports: '3399-3300' }] }, key: 'projects[0].ports', found: '3399-3300', expected: /FROM <= TO/ },
    { name: 'project token hash', raw: { projects: [{ name: 'odin', role: 'ps', ports: '3300-3399', tokenHash: 'plain' }] }, key: 'projects[0].tokenHash', found: 'plain', expected: /sha256/ },
    { name: 'project name', raw: { projects: [{ name: 'Odin!', role: 'ps', ports: '3300-3399' }] }, key: 'projects[0].name', found: 'Odin!', expected: /lowercase/ },
    {
      name: 'overlapping ranges',
      raw: { projects: [{ name: 'a', role: 'ps', ports: '3000-3100' }, { name: 'b', role: 'ps', ports: '3100-3200' }] },
      key: 'projects[1].ports',
      found: '3100-3200',
      expected: /overlap/,
    },
    {
      name: 'duplicate project',
      raw: { projects: [{ name: 'a', role: 'ps', ports: '3000-3001' }, { name: 'a', role: 'ps', ports: '3002-3003' }] },
      key: 'projects[1].name',
      found: 'a',
      expected: /not used before/,
    },
    { name: 'mcp listen', raw: { mcp: { listen: '127.0.0.1:99999' } }, key: 'mcp.listen', found: '127.0.0.1:99999', expected: /0 to 65535/ },
    { name: 'unknown key', raw: { helth: {} }, key: 'helth', found: {}, expected: /no such key/ },
    { name: 'log level', raw: { logging: { level: 'loud' } }, key: 'logging.level', found: 'loud', expected: /"info"/ },
  ];

  it.each(cases)('names the field, the value and the expected form: $name', ({ raw, key, found, expected }) => {
    const problems = problemsOf(raw);
    const problem = problems.find((p) => p.key === key);
    expect(problem, `problems were ${JSON.stringify(problems)}`).toBeDefined();
    expect(problem!.found).toEqual(found);
    expect(problem!.expected).toMatch(expected);
  });

  it('reports every problem at once and the message lists each key', () => {
    try {
      parseConfig({ tunnel: { id: 'x' }, health: { probeIntervalSeconds: -5 } }, 'multi.yml');
      expect.unreachable();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('tunnel.id: found "x"');
      expect(message).toContain('health.probeIntervalSeconds: found -5');
      expect((error as TunnelManagerError).fix).toContain('multi.yml');
    }
  });
});
