import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Registry } from 'prom-client';
import { startHealthServer } from '../../src/app/operations/health-server.ts';
import { rawHttp } from '../helpers/raw-http.ts';
import { call, mcpClient, portOf, startOrigin, startTestService } from '../helpers/service.ts';
import type { Server } from 'node:http';

/**
 * The operator's listener over real HTTP: Prometheus metrics of the manager (routes, tool calls, saga steps, tunnel,
 * reloads, Cloudflare requests), health and readiness, and a stable scrape target for cloudflared's own metrics.
 * No token needed, no secret served.
 */

let env: Awaited<ReturnType<typeof startTestService>>;
let consilio: Client;
let origin: Server;
let metricsUrl: string;
let base: string;

async function text(url: string, init?: RequestInit): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

/** The value of one sample line, e.g. value(body, 'tunnel_manager_tunnel_up') or with labels. */
function value(body: string, sample: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

beforeAll(async () => {
  env = await startTestService();
  const info = env.service.sandboxInfo!;
  metricsUrl = info.metricsUrl!;
  base = metricsUrl.replace(/\/metrics$/, '');
  consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  const port = await call<{ port: number }>(consilio, 'port_allocate', { purpose: 'metrics test' });
  origin = await startOrigin(port.data.port, 'metrics-origin');
  const route = await call(consilio, 'tunnel_request_cname', { subdomain: 'metrics', targetPort: port.data.port });
  expect(route.isError, JSON.stringify(route.data)).toBe(false);
}, 60_000);

afterAll(async () => {
  await consilio?.close();
  origin?.close();
  await env?.stop();
});

describe('the metrics and health listener', () => {
  it('is in sandbox.json, on its own port, and answers without a token', async () => {
    const info = env.service.sandboxInfo!;
    expect(info.healthUrl).toBe(`${base}/healthz`);
    expect(new URL(metricsUrl).port).not.toBe(new URL(info.mcpUrl).port);
    expect(await text(info.healthUrl!)).toMatchObject({ status: 200, body: JSON.stringify({ status: 'ok' }) });
    const ready = await text(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready', reason: expect.stringContaining('running') });
  });

  it('/metrics has the routes, tool calls, saga steps, tunnel, reloads and Cloudflare requests, and no secret', async () => {
    const metrics = await text(metricsUrl);
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    const body = metrics.body;
    expect(value(body, 'tunnel_manager_routes{status="active",project="consilio"}')).toBe(1);
    expect(value(body, 'tunnel_manager_tunnel_up')).toBe(1);
    expect(value(body, 'tunnel_manager_tunnel_state{state="running.up"}')).toBe(1);
    expect(value(body, 'tunnel_manager_tool_calls_total{tool="tunnel_request_cname",outcome="ok"}')).toBe(1);
    expect(value(body, 'tunnel_manager_tool_calls_total{tool="port_allocate",outcome="ok"}')).toBe(1);
    expect(value(body, 'tunnel_manager_tool_call_duration_seconds_count{tool="tunnel_request_cname"}')).toBe(1);
    expect(value(body, 'tunnel_manager_sagas_total{kind="provision",outcome="ok"}')).toBe(1);
    expect(value(body, 'tunnel_manager_saga_step_duration_seconds_count{kind="provision",step="dns"}')).toBe(1);
    expect(value(body, 'tunnel_manager_reloads_total{strategy="replica",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(value(body, 'tunnel_manager_cloudflare_requests_total{method="POST",outcome="2xx"}')).toBeGreaterThanOrEqual(1);
    expect(value(body, 'tunnel_manager_cloudflare_requests_total{method="GET",outcome="2xx"}')).toBeGreaterThanOrEqual(1);
    expect(body).toContain('tunnel_manager_process_resident_memory_bytes');
    for (const token of Object.values(env.service.sandboxInfo!.tokens)) expect(body).not.toContain(token);
    expect(body).not.toContain(env.service.sandboxInfo!.cloudflareApiToken);
  });

  it("/cloudflared/metrics serves the live cloudflared's metrics, before and after a replica reload moved its port", async () => {
    const before = await text(`${base}/cloudflared/metrics`);
    expect(before.status).toBe(200);
    expect(before.body).toContain('cloudflared_tunnel_ha_connections');
    // Another route: a reload, which with the replica strategy moves cloudflared to the other metrics port.
    const reloadCount = value((await text(metricsUrl)).body, 'tunnel_manager_reloads_total{strategy="replica",outcome="ok"}') ?? 0;
    const second = await call(consilio, 'tunnel_request_cname', { subdomain: 'metrics-two', targetPort: portOf(origin) });
    expect(second.isError, JSON.stringify(second.data)).toBe(false);
    expect(value((await text(metricsUrl)).body, 'tunnel_manager_reloads_total{strategy="replica",outcome="ok"}')).toBe(reloadCount + 1);
    const after = await text(`${base}/cloudflared/metrics`);
    expect(after.status).toBe(200);
    expect(after.body).toContain('cloudflared_tunnel_ha_connections');
  });

  it('checks Host and Origin as the MCP listener does: loopback names on any port, nothing foreign (DNS rebinding)', async () => {
    const port = new URL(metricsUrl).port;
    for (const host of ['evil.example', `evil.example:${port}`, `localhost.evil.example:${port}`]) {
      const refused = await rawHttp(metricsUrl, { headers: { host } });
      expect(refused.status, host).toBe(403);
      const error = (JSON.parse(refused.body) as { error: { code: string; message: string; fix: string } }).error;
      expect(error.code).toBe('FORBIDDEN');
      expect(error.fix).toContain(`:${port}/metrics`);
      expect(refused.body).not.toContain('tunnel_manager_');
    }
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'localhost:1', '[::1]:9']) {
      const served = await rawHttp(metricsUrl, { headers: { host } });
      expect(served.status, host).toBe(200);
      expect(served.body).toContain('tunnel_manager_tunnel_up');
    }
    expect((await rawHttp(metricsUrl, { headers: { host: `127.0.0.1:${port}`, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await rawHttp(`${base}/healthz`, { headers: { host: 'evil.example' } })).status).toBe(403);
    expect((await rawHttp(metricsUrl, { headers: { host: `127.0.0.1:${port}`, origin: 'http://localhost:6274' } })).status).toBe(200);
  });

  it('serves only GET and HEAD, and says what it serves elsewhere', async () => {
    expect((await text(metricsUrl, { method: 'POST', body: 'x' })).status).toBe(405);
    const other = await text(`${base}/mcp`);
    expect(other.status).toBe(404);
    expect(other.body).toContain('/metrics');
  });
});

describe('a scrape Prometheus accepts, with bounded labels', () => {
  /**
   * The series of a scrape that a caller could influence: every sample line's name and labels, without the runtime's
   * own (prom-client's process and V8 gauges, whose label sets V8 bounds: a GC kind's series appears the first time
   * that kind runs, whatever the callers do).
   */
  const seriesOf = (body: string) =>
    new Set(
      body
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#') && !/^tunnel_manager_(nodejs|process)_/.test(line))
        .map((line) => line.slice(0, line.lastIndexOf(' '))),
    );

  it('100 made-up tool names add no series: an unknown tool is counted as `unknown`', async () => {
    // Warm the `unknown` series once, so the 100 below have nothing new to add.
    await consilio.callTool({ name: 'made_up_warm_up', arguments: {} }).catch(() => undefined);
    const before = seriesOf((await text(metricsUrl)).body);
    for (let i = 0; i < 100; i += 1) await consilio.callTool({ name: `made_up_tool_${i}`, arguments: {} }).catch(() => undefined);
    const after = (await text(metricsUrl)).body;
    expect([...seriesOf(after)].filter((series) => !before.has(series))).toEqual([]);
    expect(after).not.toContain('made_up');
    expect(value(after, 'tunnel_manager_tool_calls_total{tool="unknown",outcome="error"}')).toBe(101);
  });

  it('counts restarts with a counter', async () => {
    const body = (await text(metricsUrl)).body;
    expect(body).toContain('# TYPE tunnel_manager_tunnel_restarts_total counter');
    expect(value(body, 'tunnel_manager_tunnel_restarts_total')).toBe(env.service.backend.status().restartCount);
    expect(body).not.toMatch(/^# TYPE tunnel_manager_tunnel_restarts gauge/m);
  });

  // promtool comes with Debian's `prometheus` package (.ci/run installs it). Without it the check is skipped here,
  // and fails under CI, which must run it.
  const promtool = spawnSync('promtool', ['--version']).error === undefined;
  if (!promtool && !process.env.CI) console.warn('\n[metrics] SKIPPING `promtool check metrics`: promtool is not installed (apt-get install -y prometheus).\n');
  it.skipIf(!promtool && !process.env.CI)('`promtool check metrics` finds nothing to say about a real scrape', async () => {
    expect(promtool, 'promtool is not installed: apt-get install -y prometheus (.ci/run does)').toBe(true);
    const body = (await text(metricsUrl)).body;
    const checked = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(`${checked.stdout}${checked.stderr}`.trim()).toBe('');
    expect(checked.status).toBe(0);
  });
});

describe('readiness', () => {
  it('answers 503 with the reason while the tunnel is not serving', async () => {
    const server = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      registry: new Registry(),
      readiness: () => ({ ready: false, reason: 'tunnel backoff: not serving yet' }),
      cloudflaredMetricsAddress: () => null,
    });
    try {
      const ready = await text(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toEqual({ status: 'not ready', reason: 'tunnel backoff: not serving yet' });
      expect((await text(`${server.url}/cloudflared/metrics`)).status).toBe(503);
      expect((await text(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
