import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { SandboxFile } from '../../src/app/config/sandbox-mode.ts';
import { sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { standinPidsFor } from '../helpers/standin-cloudflared.ts';
import { call, freePortInRange, mcpClient } from '../helpers/service.ts';

/**
 * A graceful stop with calls in flight, for real: `tunnel-manager serve` as a process, 20 `tunnel_request_cname` calls
 * held up by a slow Cloudflare (the emulator's latency knob), then SIGTERM. Every call is answered, by its result or by
 * SHUTTING_DOWN with the fix to retry after the restart; none waits for its client's timeout (-32001). A call made
 * during the stop is refused at once. After the restart nothing is left half done.
 */

const dir = mkdtempSync(join(tmpdir(), 'tm-shutdown-'));
const dataDir = join(dir, 'data');
const configFile = join(dir, 'tunnel-manager.yml');
writeFileSync(configFile, ['cloudflared:', '  metricsAddress: 127.0.0.1:0', 'limits:', '  toolCallsPerMinute: 0', ''].join('\n'));

const clients: Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  for (const pid of standinPidsFor(join(dataDir, 'cloudflared', 'config.yml'))) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startManager() {
  const cli = startCli(['serve', '--config', configFile, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
  const info = await sandboxFileOf<SandboxFile>(cli, dataDir);
  await waitUntil(() => cli.output().includes('"msg":"started cloudflared') || cli.output().includes('adopted') || undefined, 60_000, 'cloudflared to run');
  const client = async (project: string) => {
    const made = await mcpClient(info.mcpUrl, info.tokens[project]!);
    clients.push(made);
    return made;
  };
  return { cli, info, client };
}

type Answer = { kind: 'result'; isError: boolean; data: { code?: string; message?: string; fix?: string } } | { kind: 'rejected'; code: number | undefined; message: string };

describe('a graceful stop with calls in flight', () => {
  it('answers every one of 20 in-flight calls and closes the streams; nothing is left half done after the restart', async () => {
    const first = await startManager();
    const ms = await first.client('meta-supervisor');
    const sessions = await Promise.all(Array.from({ length: 5 }, () => first.client('consilio')));
    // A port of the range that nothing on this machine uses (another test's container may hold the first one).
    const port = (await call<{ port: number }>(sessions[0]!, 'port_allocate', { port: await freePortInRange(3150, 3199), purpose: 'shutdown test' })).data.port;
    // Every DNS create now takes 30 s: the calls are held in their saga's DNS step.
    const admin = new URL('/__admin/faults', first.info.cloudflareApiUrl);
    const set = await fetch(admin, {
      method: 'POST',
      headers: { authorization: `Bearer ${first.info.cloudflareApiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ faults: [{ route: 'POST /zones/:zone/dns_records', latencyMs: 30_000 }] }),
    });
    expect(set.status).toBe(200);

    const started = Date.now();
    const answers: (Answer & { afterMs: number })[] = [];
    const calls = Array.from({ length: 20 }, (_, i) =>
      sessions[i % 5]!
        .callTool({ name: 'tunnel_request_cname', arguments: { subdomain: `stop-${i}`, targetPort: port, publishAhead: true } }, undefined, { timeout: 60_000 })
        .then(
          (result): Answer => ({ kind: 'result', isError: result.isError === true, data: result.structuredContent as { code?: string; fix?: string } }),
          (error: { code?: number; message?: string }): Answer => ({ kind: 'rejected', code: error.code, message: String(error.message) }),
        )
        .then((answer) => {
          answers.push({ ...answer, afterMs: Date.now() - started });
        }),
    );
    // All 20 reserved their names: they are in flight.
    await waitUntil(async () => {
      const listed = await call<{ routes: { hostname: string; status: string }[] }>(ms, 'tunnel_list_cnames', { project: 'consilio', limit: 100 });
      if (answers.length > 0) throw new Error(`a call ended before the stop: ${JSON.stringify(answers[0])}`);
      return listed.data.routes.filter((route) => route.hostname.startsWith('stop-') && route.status === 'pending').length === 20 || undefined;
    }, 30_000, 'the 20 calls to be in flight');

    const stopAt = Date.now();
    first.cli.child.kill('SIGTERM');
    // A call made during the stop is refused at once, not left waiting. "During": once the manager has taken the signal
    // (it logs it, then closes the MCP listener first), not merely after kill() returned.
    await waitUntil(() => first.cli.output().includes('"msg":"shutting down"') || undefined, 30_000, 'the manager to take SIGTERM');
    const late = await sessions[0]!.callTool({ name: 'tunnel_get_status', arguments: {} }, undefined, { timeout: 60_000 }).then(
      (result) => ({ kind: 'result' as const, data: result.structuredContent as { code?: string } }),
      (error: { code?: number; message?: string }) => ({ kind: 'rejected' as const, code: error.code, message: String(error.message) }),
    );
    await Promise.all(calls);
    expect(await first.cli.exited).toBe(0);
    const stopMs = Date.now() - stopAt;

    // In-flight calls unanswered after a stop: 0. None timed out (-32001): each got a result.
    expect(answers).toHaveLength(20);
    expect(answers.filter((answer) => answer.kind === 'rejected')).toEqual([]);
    for (const answer of answers) {
      if (answer.kind !== 'result') continue;
      expect(answer.isError).toBe(true);
      expect(answer.data.code).toBe('SHUTTING_DOWN');
      expect(answer.data.fix).toContain('Retry after the restart');
      expect(answer.afterMs).toBeLessThan(30_000);
    }
    expect(late.kind === 'rejected' ? late.message : late.data.code).toMatch(/SHUTTING_DOWN|ECONNREFUSED|fetch failed/);
    expect(stopMs).toBeLessThan(30_000);
    console.log(`shutdown with 20 calls in flight: all answered, the manager exited ${stopMs} ms after SIGTERM`);

    // After the restart: every one of those requests is settled, none is left pending.
    const second = await startManager();
    const ms2 = await second.client('meta-supervisor');
    const routes = await waitUntil(async () => {
      const listed = await call<{ routes: { hostname: string; status: string }[] }>(ms2, 'tunnel_list_cnames', { project: 'consilio', limit: 100 });
      const mine = listed.data.routes.filter((route) => route.hostname.startsWith('stop-'));
      return mine.some((route) => route.status !== 'active') ? undefined : mine;
    }, 120_000, 'the interrupted requests to settle after the restart');
    // Each was resumed to its end (active) or undone (gone): none is pending, deleting or failed.
    expect(routes.map((route) => route.status).filter((status) => status !== 'active')).toEqual([]);
    second.cli.child.kill('SIGTERM');
    expect(await second.cli.exited).toBe(0);
  }, 240_000);
});
