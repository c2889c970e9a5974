import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRow } from '../../src/store/events-repository.ts';
import { waitUntil } from '../helpers/cli.ts';
import { call, standinFaultFile, startWithConsilioOrigin } from '../helpers/service.ts';

/**
 * A CNAME request while the tunnel cannot serve soon answers at once (issue 27, item 1), with the real stand-in
 * cloudflared driven into backoff through its fault file:
 * - in a long backoff, the request is refused before anything is created, with the time of the next start and the
 *   way to start it now;
 * - when the tunnel goes into backoff while a request's saga waits for it, the saga gives up at once and undoes what
 *   it did, rather than waiting out its timeout (60 s here, longer than this test may take).
 */
const faults = standinFaultFile('tm-tunnel-down-');
const faultFile = faults.path;

type ToolError = { code: string; message: string; fix: string; details: Record<string, unknown> };

let stage: Awaited<ReturnType<typeof startWithConsilioOrigin>>;
let env: typeof stage.env;
let consilio: Client;
let ms: Client;
let port: number;
let events: EventRow[];

const state = () => env.service.backend.status().state;
const recordsNamed = (hostname: string) => env.service.sandbox!.emulator.state().records.filter((record) => record.name === hostname);
const hasRule = (hostname: string) => readFileSync(env.config.cloudflared.configPath, 'utf8').includes(`hostname: ${hostname}`);

beforeAll(async () => {
  stage = await startWithConsilioOrigin({
    name: 'tunnel down tests',
    // A failed start waits 60 s; a start that does not get ready within 8 s has failed.
    overrides: { restart: { startTimeoutSeconds: 8, stopGraceSeconds: 2, backoffSeconds: [60] } },
    serviceOptions: { tunnelReadyTimeoutMs: 60_000 },
  });
  ({ env, consilio, ms, port, events } = stage);
}, 90_000);

afterAll(async () => {
  await stage?.stop();
  faults.remove();
});

/** The tunnel back to running (fault file removed, then the meta-supervisor's tunnel_restart). */
async function recover(): Promise<void> {
  rmSync(faultFile, { force: true });
  const restarted = await call<{ state: string }>(ms, 'tunnel_restart');
  expect(restarted.isError, JSON.stringify(restarted.data)).toBe(false);
  expect(restarted.data.state).toMatch(/^running/);
}

describe('a CNAME request while the tunnel cannot serve soon', () => {
  it('in a long backoff: refused at once, before anything is created, with the next start and tunnel_restart', async () => {
    writeFileSync(faultFile, 'refuse-start\n');
    try {
      const live = await env.service.driver.current();
      process.kill(live!.pid!, 'SIGKILL');
      await waitUntil(() => state() === 'backoff' || undefined, 30_000, 'the tunnel to be in backoff');
      const nextStartAt = env.service.backend.status().nextStartAt;
      const posts = env.service.sandbox!.emulator.requests().length;

      for (const dryRun of [true, false]) {
        const refused = await call<ToolError>(consilio, 'tunnel_request_cname', { subdomain: 'during-backoff', targetPort: port, dryRun });
        expect(refused.isError, JSON.stringify(refused.data)).toBe(true);
        expect(refused.data.code).toBe('TUNNEL_NOT_RUNNING');
        expect(refused.data.message).toContain(dryRun ? 'The request would be refused.' : 'Nothing was created.');
        expect(refused.data.details).toMatchObject({ state: 'backoff', nextStartAt });
        expect(refused.data.details.retryAfterSeconds).toBeGreaterThan(10);
        expect(refused.data.fix).toContain(`Retry after ${nextStartAt}`);
        expect(refused.data.fix).toContain('tunnel_restart');
      }
      // Nothing was created, and Cloudflare was asked nothing more than the checks of the name.
      expect(recordsNamed('during-backoff.153.se')).toEqual([]);
      expect(hasRule('during-backoff.153.se')).toBe(false);
      expect(env.service.backend.findRoute('during-backoff.153.se')).toBeUndefined();
      expect(env.service.sandbox!.emulator.requests().slice(posts).filter((entry) => entry.route === 'POST /zones/:zone/dns_records')).toEqual([]);
      expect(events.filter((event) => event.data.hostname === 'during-backoff.153.se')).toEqual([]);
      // The tunnel has not moved on meanwhile: the answer came before its next start.
      expect(state()).toBe('backoff');
    } finally {
      await recover();
    }
  }, 60_000);

  it('the tunnel goes into backoff while the saga waits for it: the saga gives up at once and undoes everything', async () => {
    // The next start never gets ready (it waits 30 s to connect, the start gives up after 8 s): a failed start.
    writeFileSync(faultFile, 'slow-start 30\n');
    try {
      // cloudflared dies: the first failure of a streak starts it again at once, and that start is slow.
      const live = await env.service.driver.current();
      process.kill(live!.pid!, 'SIGKILL');
      await waitUntil(() => state() === 'starting' || undefined, 20_000, 'the tunnel to be starting');
      // An operator's restart of a tunnel that is not running is a plain stop and start, as slow.
      const restart = call<ToolError>(ms, 'tunnel_restart');
      // Starting: it may serve within seconds, so the request goes ahead and its saga waits for the tunnel.
      const result = await call<ToolError>(consilio, 'tunnel_request_cname', { subdomain: 'while-starting', targetPort: port });
      expect(result.isError, JSON.stringify(result.data)).toBe(true);
      expect(result.data.code).toBe('TUNNEL_NOT_RUNNING');
      expect(result.data.message).toContain('backs off until');
      expect(result.data.message).toContain('Everything done for this request was undone.');
      expect(result.data.details).toMatchObject({ state: 'backoff', hostname: 'while-starting.153.se' });
      expect(result.data.fix).toContain('tunnel_restart');
      // It went through the saga (the record and the rule were made), and everything was undone.
      const steps = (result.data.details.timings as { step: string }[]).map((timing) => timing.step);
      expect(steps).toEqual(expect.arrayContaining(['reserve', 'dns', 'ingress']));
      expect(recordsNamed('while-starting.153.se')).toEqual([]);
      expect(hasRule('while-starting.153.se')).toBe(false);
      expect(env.service.backend.findRoute('while-starting.153.se')).toBeUndefined();
      const failed = events.filter((event) => event.kind === 'route.failed' && event.data.hostname === 'while-starting.153.se');
      expect(failed.map((event) => (event.data.error as { code: string }).code)).toEqual(['TUNNEL_NOT_RUNNING']);
      // It did not wait out the backoff (60 s) or its own timeout (60 s): the tunnel is still backing off.
      expect(state()).toBe('backoff');
      // tunnel_restart, which waited for the same start, says so as well.
      expect((await restart).data.code).toBe('TUNNEL_NOT_RUNNING');
    } finally {
      await recover();
    }
  }, 60_000);
});
