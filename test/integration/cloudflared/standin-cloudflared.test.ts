import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parsePrometheusText, sumSamples } from '../../../src/cloudflared/prometheus-text.ts';
import { startSandboxEdge, type SandboxEdge } from '../../../src/sandbox/edge/edge.ts';
import {
  freePort,
  getJson,
  getViaEdge,
  runStandin,
  startOrigin,
  tempDir,
  waitFor,
  waitReady,
  writeTunnelConfig,
  type RunningStandin,
} from '../../helpers/standin-cloudflared.ts';

const dir = tempDir('standin');
const running: RunningStandin[] = [];
let edge: SandboxEdge;
let origin: Awaited<ReturnType<typeof startOrigin>>;

beforeAll(async () => {
  edge = await startSandboxEdge({ listen: '127.0.0.1:0' });
  origin = await startOrigin('app');
});

afterEach(async () => {
  for (const standin of running.splice(0)) {
    if (standin.child.exitCode === null && standin.child.signalCode === null) standin.child.kill('SIGKILL');
    await standin.exited;
  }
});

afterAll(async () => {
  await edge.close();
  await origin.close();
  dir.remove();
});

function start(args: string[], env: NodeJS.ProcessEnv = {}): RunningStandin {
  const standin = runStandin(args, { TM_STANDIN_EDGE: edge.address, ...env });
  running.push(standin);
  return standin;
}

async function metricsOf(address: string): Promise<ReturnType<typeof parsePrometheusText>['samples']> {
  const response = await fetch(`http://${address}/metrics`);
  return parsePrometheusText(await response.text()).samples;
}

describe('stand-in cloudflared', () => {
  it('refuses an invalid config with exit 1 and a message naming the rule', async () => {
    const config = writeTunnelConfig(join(dir.path, 'invalid.yml'), [
      { hostname: 'app.example.com:8080', service: `http://127.0.0.1:${origin.port}` },
      { service: 'http_status:404' },
    ]);
    const standin = start(['tunnel', '--config', config, '--metrics', `127.0.0.1:${await freePort()}`, 'run']);
    const { code } = await standin.exited;
    expect(code).toBe(1);
    expect(standin.output()).toMatch(/ERR .*ingress\[0\] \(hostname app\.example\.com:8080\)/);
    expect(standin.output()).toContain('port');
  });

  it('refuses a config whose last rule is not a catch-all', async () => {
    const config = writeTunnelConfig(join(dir.path, 'no-catch-all.yml'), [{ hostname: 'app.example.com', service: 'http://127.0.0.1:1' }]);
    const standin = start(['tunnel', '--config', config, 'run']);
    expect((await standin.exited).code).toBe(1);
    expect(standin.output()).toContain('ingress[0] (hostname app.example.com) is the last rule');
  });

  it('refuses an unknown flag the way cloudflared does', async () => {
    const standin = start(['tunnel', '--definitely-not-a-flag', 'x', 'run', 'id']);
    expect((await standin.exited).code).toBe(1);
    expect(standin.output()).toContain('flag provided but not defined: -definitely-not-a-flag');
  });

  it('proxies by Host header to a real origin, answers the catch-all, and counts by status', async () => {
    const config = writeTunnelConfig(join(dir.path, 'ok.yml'), [
      { hostname: 'app.example.com', path: '^/api', service: `http://127.0.0.1:${origin.port}` },
      { hostname: 'hello.example.com', service: 'hello_world' },
      { hostname: '*.teapots.example.com', service: 'http_status:418' },
      { service: 'http_status:404' },
    ]);
    const metrics = `127.0.0.1:${await freePort()}`;
    const pidfile = join(dir.path, 'standin.pid');
    const standin = start(['--no-autoupdate', 'tunnel', '--config', config, '--metrics', metrics, '--grace-period=5s', '--loglevel', 'info', '--pidfile', pidfile, 'run']);
    const ready = (await waitReady(metrics, 4)) as { status: number; readyConnections: number; connectorId: string };
    expect(ready).toMatchObject({ status: 200, readyConnections: 4 });
    expect(ready.connectorId).toMatch(/^[0-9a-f-]{36}$/);
    expect(readFileSync(pidfile, 'utf8').trim()).toBe(String(standin.child.pid));

    const proxied = await getViaEdge(edge.port, 'app.example.com', '/api/items?x=1');
    expect(proxied.status).toBe(200);
    expect(proxied.body).toBe('app GET /api/items?x=1 host=app.example.com\n');
    expect(proxied.servedBy).toBe(ready.connectorId);
    expect((await getViaEdge(edge.port, 'app.example.com', '/other')).status).toBe(404);
    expect((await getViaEdge(edge.port, 'unknown.example.com')).status).toBe(404);
    expect((await getViaEdge(edge.port, 'a.teapots.example.com')).status).toBe(418);
    const hello = await getViaEdge(edge.port, 'hello.example.com');
    expect(hello.status).toBe(200);
    expect(hello.body).toContain('<h1>');

    const samples = await metricsOf(metrics);
    expect(sumSamples(samples, 'cloudflared_tunnel_total_requests')).toBe(5);
    expect(sumSamples(samples, 'cloudflared_tunnel_response_by_code', { status_code: '404' })).toBe(2);
    expect(sumSamples(samples, 'cloudflared_tunnel_response_by_code', { status_code: '200' })).toBe(2);
    expect(sumSamples(samples, 'cloudflared_tunnel_response_by_code', { status_code: '418' })).toBe(1);
    expect(sumSamples(samples, 'cloudflared_tunnel_ha_connections')).toBe(4);
    expect(sumSamples(samples, 'cloudflared_tunnel_request_errors')).toBe(0);
    // As the real cloudflared reports its registrations (docs/cloudflared.md, "The stand-in and the real binary").
    expect(sumSamples(samples, 'cloudflared_tunnel_tunnel_register_success', { rpcName: 'registerConnection' })).toBe(4);
    expect(sumSamples(samples, 'cloudflared_tunnel_server_locations', { edge_location: 'sbx01' })).toBe(4);
    expect((await fetch(`http://${metrics}/ready`)).headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await (await fetch(`http://${metrics}/healthcheck`)).text()).toBe('OK\n');

    standin.child.kill('SIGTERM');
    expect((await standin.exited).code).toBe(0);
    expect(existsSync(pidfile)).toBe(false);
    // With no connector left, the edge answers as Cloudflare does for a tunnel with no connection.
    expect((await getViaEdge(edge.port, 'app.example.com', '/api')).status).toBe(530);
  });

  it('counts an unreachable origin as a request error and answers 502', async () => {
    const deadPort = await freePort();
    const config = writeTunnelConfig(join(dir.path, 'dead-origin.yml'), [
      { hostname: 'dead.example.com', service: `http://127.0.0.1:${deadPort}` },
      { service: 'http_status:404' },
    ]);
    const metrics = `127.0.0.1:${await freePort()}`;
    start(['tunnel', '--config', config, '--metrics', metrics, 'run']);
    await waitReady(metrics);
    expect((await getViaEdge(edge.port, 'dead.example.com')).status).toBe(502);
    const samples = await metricsOf(metrics);
    expect(sumSamples(samples, 'cloudflared_tunnel_request_errors')).toBe(1);
    expect(sumSamples(samples, 'cloudflared_tunnel_response_by_code', { status_code: '502' })).toBe(1);
  });

  it('drains a request in flight on SIGTERM, and exits at once on a second signal', async () => {
    const config = writeTunnelConfig(join(dir.path, 'drain.yml'), [
      { hostname: 'slow.example.com', service: `http://127.0.0.1:${origin.port}` },
      { service: 'http_status:404' },
    ]);
    const metrics = `127.0.0.1:${await freePort()}`;
    const standin = start(['tunnel', '--config', config, '--metrics', metrics, '--grace-period', '20s', 'run']);
    await waitReady(metrics);

    const inFlight = getViaEdge(edge.port, 'slow.example.com', '/work?delay=700');
    await waitFor(async () => sumSamples(await metricsOf(metrics), 'cloudflared_tunnel_concurrent_requests_per_tunnel') === 1, 3000, 'the request to be in flight');
    standin.child.kill('SIGTERM');
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.body).toContain('/work?delay=700');
    expect((await standin.exited).code).toBe(0);
    expect(standin.output()).toContain('Initiating graceful shutdown');

    const second = start(['tunnel', '--config', config, '--metrics', metrics, '--grace-period', '20s', 'run']);
    await waitReady(metrics);
    const stuck = getViaEdge(edge.port, 'slow.example.com', '/work?delay=15000');
    await waitFor(async () => sumSamples(await metricsOf(metrics), 'cloudflared_tunnel_concurrent_requests_per_tunnel') === 1, 3000, 'the slow request to be in flight');
    second.child.kill('SIGTERM');
    await waitFor(() => second.output().includes('Initiating graceful shutdown'), 3000, 'the first signal to be seen');
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(second.output()).toContain('second signal');
    // The origin had 15 s to go: the process ended without waiting for it, so the edge had no answer to relay.
    expect((await stuck).status).toBe(502);
  });

  it('serves fault knobs: fewer ready connections, never ready, and a crash after N seconds', async () => {
    const config = writeTunnelConfig(join(dir.path, 'knobs.yml'), [{ service: 'http_status:404' }]);
    const degraded = `127.0.0.1:${await freePort()}`;
    start(['tunnel', '--config', config, '--metrics', degraded, 'run'], { TM_STANDIN_READY_CONNECTIONS: '2' });
    expect(await waitReady(degraded, 2)).toMatchObject({ status: 200, readyConnections: 2 });

    const never = `127.0.0.1:${await freePort()}`;
    start(['tunnel', '--config', config, '--metrics', never, 'run'], { TM_STANDIN_NEVER_READY: '1' });
    const answer = await waitFor(() => getJson(`http://${never}/ready`), 10_000, '/ready to answer');
    expect(answer).toMatchObject({ status: 503, body: { status: 503, readyConnections: 0 } });

    const crashing = start(['tunnel', '--config', config, '--metrics', `127.0.0.1:${await freePort()}`, 'run'], { TM_STANDIN_EXIT_AFTER: '0.5' });
    expect((await crashing.exited).code).toBe(1);
  });

  it('runs without an edge, reporting its connections as ready', async () => {
    const config = join(dir.path, 'no-edge.yml');
    writeFileSync(config, 'tunnel: abc\ningress:\n  - service: hello_world\n');
    const metrics = `127.0.0.1:${await freePort()}`;
    const standin = runStandin(['tunnel', '--config', config, '--metrics', metrics, 'run'], { TM_STANDIN_EDGE: '' });
    running.push(standin);
    expect(await waitReady(metrics, 4)).toMatchObject({ status: 200, readyConnections: 4 });
    expect(standin.output()).toContain('tunnelID=abc');
  });
});
