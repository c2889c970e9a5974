import { describe, expect, it } from 'vitest';
import { checkConnectivity, parseScriptOutput } from '../../../src/docker/connectivity-check.ts';

describe('parseScriptOutput (the in-container check)', () => {
  it('reads the three steps, their latencies and the HTTP status', () => {
    const output = ['@@resolve 100.00 100.01 ok DNS', '@@tcp 100.01 100.03 0 ', '@@http 100.03 100.05 1', '@@| Connecting to web (10.231.1.2:80)', '@@|   HTTP/1.1 404 Not Found', '@@| wget: server returned error: HTTP/1.1 404 Not Found'].join('\n');
    const report = parseScriptOutput(output, 'http://web:80', 'helper-container', 'from a helper');
    expect(report).toMatchObject({ ok: true, httpStatus: 404, latencyMs: 20, error: null });
    expect(report.steps.map((s) => s.step)).toEqual(['resolve', 'tcp', 'http']);
  });

  it('reports a refused connection at the TCP step', () => {
    const output = ['@@resolve 1.00 1.00 ok /etc/hosts', '@@tcp 1.00 1.01 1 nc: can\'t connect to remote host (10.231.1.2): Connection refused'].join('\n');
    const report = parseScriptOutput(output, 'http://web:81', 'exec', 'inside');
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/TCP connect failed: .*Connection refused/);
  });

  it('says so when the script produced nothing it understands', () => {
    expect(parseScriptOutput('exec failed: no sh', 'http://web:80', 'exec', 'inside').error).toMatch(/no result: exec failed/);
  });
});

describe('checkConnectivity from the host', () => {
  it('reports a refused TCP connect with which check was done', async () => {
    const report = await checkConnectivity(null, { cloudflared: { kind: 'host' }, target: 'http://127.0.0.1:1', timeoutMs: 1_000 });
    expect(report).toMatchObject({ ok: false, method: 'host', vantage: 'from the host, where cloudflared runs' });
    expect(report.steps.map((s) => [s.step, s.ok])).toEqual([['resolve', true], ['tcp', false]]);
    expect(report.error).toMatch(/ECONNREFUSED/);
  });

  it('refuses a target that is not an http(s) URL', async () => {
    await expect(checkConnectivity(null, { cloudflared: { kind: 'host' }, target: 'unix:/tmp/x.sock' })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
  });
});
