import { describe, expect, it } from 'vitest';
import { parseGoDuration, parseStandinCommandLine } from '../../../src/sandbox/standin-cloudflared/command-line.ts';
import { buildTunnelArgv } from '../../../src/cloudflared/tunnel-command.ts';

describe('stand-in cloudflared command line', () => {
  it('reads the command line the drivers build', () => {
    const argv = buildTunnelArgv({ command: [], configPath: '/etc/cf/config.yml', metricsAddress: '127.0.0.1:20241', tunnelId: 'abc', flags: ['--grace-period', '45s', '--no-autoupdate'] });
    expect(parseStandinCommandLine(argv)).toEqual({
      kind: 'tunnel-run',
      configPath: '/etc/cf/config.yml',
      metricsAddress: '127.0.0.1:20241',
      gracePeriodMs: 45_000,
      pidfile: null,
      loglevel: 'info',
      edge: null,
      haConnections: null,
      tunnelId: 'abc',
    });
  });

  it('accepts flags after run, = forms, single dashes and global flags before tunnel', () => {
    const parsed = parseStandinCommandLine(['--no-autoupdate', 'tunnel', 'run', '-config=/c.yml', '--loglevel', 'debug', '--pidfile', '/run/cf.pid', '--ha-connections', '2', 'my-tunnel']);
    expect(parsed).toMatchObject({ kind: 'tunnel-run', configPath: '/c.yml', loglevel: 'debug', pidfile: '/run/cf.pid', haConnections: 2, tunnelId: 'my-tunnel', gracePeriodMs: 30_000 });
  });

  it('refuses unknown flags, bad durations and other commands as cloudflared does', () => {
    expect(parseStandinCommandLine(['tunnel', '--nope', 'run'])).toEqual({ kind: 'usage-error', message: 'Incorrect Usage: flag provided but not defined: -nope' });
    expect(parseStandinCommandLine(['tunnel', '--grace-period', 'soon', 'run'])).toMatchObject({ kind: 'usage-error', message: expect.stringContaining('-grace-period') });
    expect(parseStandinCommandLine(['tunnel', 'list'])).toMatchObject({ kind: 'usage-error' });
    expect(parseStandinCommandLine(['tunnel', 'run', '--config'])).toMatchObject({ kind: 'usage-error', message: 'flag needs an argument: -config' });
    expect(parseStandinCommandLine(['tunnel', 'run', 'a', 'b'])).toMatchObject({ kind: 'usage-error' });
  });

  it('has the sandbox edge and version commands', () => {
    expect(parseStandinCommandLine(['standin-edge', '--listen', '127.0.0.1:8080'])).toEqual({ kind: 'edge', listen: '127.0.0.1:8080', tunnelListen: null, caDir: null });
    expect(parseStandinCommandLine(['--version'])).toEqual({ kind: 'version' });
  });

  it('parses Go durations', () => {
    expect(parseGoDuration('30s')).toBe(30_000);
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('1.5s')).toBe(1_500);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('30')).toBeNull();
  });
});
