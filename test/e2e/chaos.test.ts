import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { SandboxFile } from '../../src/app/config/sandbox-mode.ts';
import { MARKER_PREFIX } from '../../src/cloudflare/ownership-marker.ts';
import { MANAGED_MARKER } from '../../src/cloudflared/ingress/ingress-render.ts';
import { sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { realCloudflaredForTests } from '../helpers/real-cloudflared.ts';
import { cloudflaredPidsFor, freePort } from '../helpers/standin-cloudflared.ts';
import { seededRandom } from '../helpers/random.ts';
import { call, mcpClient, projectPorts, reservedProjects, startOriginInRange } from '../helpers/service.ts';

/**
 * Chaos, bounded in time (TM_CHAOS_SECONDS, default 60) and reproducible (TM_CHAOS_SEED, printed): rounds of
 * SIGKILL of the manager in the middle of concurrent requests and deletes, SIGKILL of cloudflared, a Cloudflare API
 * fault during requests and deletes, and a clean restart. After each round, once the sagas are done, the invariants:
 *
 * - every `active` route has exactly one DNS record carrying our marker, and exactly one rule in config.yml;
 * - no record carrying our marker (on our tunnel) and no managed rule exists without a row in the ledger;
 * - the tunnel is running again within the time its backoff step allows;
 * - every answer a caller got is true: a request answered ok is active, one answered with an error is not, a delete
 *   answered done left no row and no record (SHUTTING_DOWN says nothing of the outcome: the work goes on after the
 *   restart);
 * - a clean restart answers every call in flight.
 *
 * The manager runs as a real process (`tunnel-manager serve`, sandbox), cloudflared it spawns as another: the
 * stand-in, and then the real cloudflared 2026.3.0 (through the sandbox edge that speaks its protocol; skipped with a
 * notice where there is none, failed under CI). The edge keeps its ports across restarts, so an adopted cloudflared
 * reconnects.
 */

type Route = { hostname: string; status: string };
type EmulatedRecord = { id: string; name: string; type: string; content: string; comment: string | null };

const seed = Number(process.env.TM_CHAOS_SEED ?? Date.now() % 1_000_000);
const budgetMs = Number(process.env.TM_CHAOS_SECONDS ?? 60) * 1000;
const realBinary = realCloudflaredForTests('chaos on the real cloudflared');
const managerPids: number[] = [];
const dirs: string[] = [];

let random = seededRandom(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** One chaos run's files: its data directory, the manager's configuration, and which cloudflared it runs. */
let dataDir = '';
let configFile = '';
let configPath = '';
let cloudflaredEnv: NodeJS.ProcessEnv = {};

interface Manager {
  child: ChildProcess;
  exited: Promise<number | null>;
  info: SandboxFile;
  ms: Client;
  consilio: Client;
}

let edgePort = 0;
let manager: Manager | null = null;

async function startManager(): Promise<Manager> {
  const cli = startCli(['serve', '--config', configFile, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', `127.0.0.1:${edgePort}`], { env: cloudflaredEnv });
  managerPids.push(cli.child.pid!);
  const info = await sandboxFileOf<SandboxFile>(cli, dataDir);
  const ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  return { child: cli.child, exited: cli.exited, info, ms, consilio };
}

async function closeClients(m: Manager): Promise<void> {
  await Promise.all([m.ms.close().catch(() => undefined), m.consilio.close().catch(() => undefined)]);
}

async function stopManager(m: Manager, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  await closeClients(m);
  m.child.kill(signal);
  await m.exited;
}

/** Waits for the tunnel to run; when it does not in time, the error says what state it was in and why. */
async function tunnelRunningWithin(m: Manager, ms: number, what: string): Promise<void> {
  let last: unknown = null;
  await waitUntil(
    async () => {
      const status = await call<{ state: string; lastError: string | null; currentDelayMs: number; code?: string }>(m.ms, 'tunnel_get_status').catch(() => null);
      // An error answer (the project's call limit, a restart under way) is a "not yet", with its code kept for the message.
      if (status?.isError) last = { error: status.data.code };
      else if (status) last = { state: status.data.state, lastError: status.data.lastError, currentDelayMs: status.data.currentDelayMs };
      return (status !== null && !status.isError && status.data.state.startsWith('running')) || undefined;
    },
    ms,
    what,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last status: ${JSON.stringify(last)}`);
  });
}

async function emulatorState(m: Manager): Promise<{ records: EmulatedRecord[] }> {
  const response = await fetch(`${new URL(m.info.cloudflareApiUrl).origin}/__admin/state`, { headers: { authorization: `Bearer ${m.info.cloudflareApiToken}` } });
  return ((await response.json()) as { result: { state: { records: EmulatedRecord[] } } }).result.state;
}

async function setFaults(m: Manager, faults: unknown[]): Promise<void> {
  await fetch(`${new URL(m.info.cloudflareApiUrl).origin}/__admin/faults`, {
    method: 'POST',
    headers: { authorization: `Bearer ${m.info.cloudflareApiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ faults }),
  });
}

async function routes(m: Manager): Promise<Route[]> {
  const listed = await call<{ routes: Route[] }>(m.ms, 'tunnel_list_cnames', { limit: 1000 });
  return listed.data.routes;
}

/** An answer a caller got in this round (calls cut off by a kill give none): it must match the world afterwards. */
interface Answer {
  op: 'request' | 'delete';
  hostname: string;
  ok: boolean;
}
let answers: Answer[] = [];
let answersChecked = 0;
/** Calls in flight at a graceful stop that got no answer (must stay 0). */
let unansweredAtStop = 0;

/** An answer that says nothing of the outcome: the stop could not wait for the call, which goes on after the restart. */
const interrupted = (result: { isError: boolean; data: { code?: string } }) => result.isError && result.data.code === 'SHUTTING_DOWN';

/**
 * Whether a call that threw was still answered: sent after the stop began, it is refused at the door (HTTP 503
 * SHUTTING_DOWN, or no listener any more: ECONNREFUSED). A cut connection or a client timeout is no answer.
 */
function refusedAtTheDoor(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause !== null && typeof error.cause === 'object' && 'code' in error.cause ? error.cause.code : undefined;
  return message.includes('SHUTTING_DOWN') || cause === 'ECONNREFUSED';
}

/**
 * A burst of concurrent requests and deletes, not awaited: the round decides what happens while they run. Each one
 * settles `true` when its caller got an answer (or, sent after a stop began, was refused at the door), `false` when
 * it got none (its connection cut, or its timeout).
 */
function burst(m: Manager, port: number, round: number): Promise<boolean>[] {
  const operations: Promise<boolean>[] = [];
  const count = 2 + Math.floor(random() * 4);
  for (let i = 0; i < count; i += 1) {
    if (random() < 0.6) {
      const subdomain = `chaos-${round}-${i}`;
      operations.push(
        call<{ code?: string }>(m.consilio, 'tunnel_request_cname', { subdomain, targetPort: port })
          .then((result) => {
            if (!interrupted(result)) answers.push({ op: 'request', hostname: `${subdomain}.153.se`, ok: !result.isError });
            return true;
          })
          .catch(refusedAtTheDoor),
      );
    } else {
      operations.push(
        routes(m)
          .then((all) => all.filter((route) => route.hostname.startsWith('chaos-') && route.status === 'active'))
          .then(async (active) => {
            if (active.length === 0) return true;
            const hostname = pick(active).hostname;
            const result = await call<{ deleted?: boolean; code?: string }>(m.consilio, 'tunnel_delete_cname', { hostname });
            if (!interrupted(result)) answers.push({ op: 'delete', hostname, ok: !result.isError && result.data.deleted === true });
            return true;
          })
          .catch(refusedAtTheDoor),
      );
    }
  }
  return operations;
}

const violations: string[] = [];

/** Waits until no saga is in flight, then checks the invariants; every breach is recorded with its round. */
async function checkInvariants(m: Manager, round: number, action: string): Promise<void> {
  await waitUntil(async () => ((await routes(m)).every((route) => route.status !== 'pending') ? true : undefined), 60_000, 'the sagas to finish');
  await waitUntil(
    async () => {
      const ingress = await call<{ actors: { path: string; state: string }[] }>(m.ms, 'supervisor_inspect', { limit: 1 });
      return ingress.data.actors.find((actor) => actor.path === 'supervisor/ingress')?.state === 'idle' || undefined;
    },
    30_000,
    'the ingress actor to be idle',
  );
  const all = await routes(m);
  const ledger = new Set(all.map((route) => route.hostname));
  const { records } = await emulatorState(m);
  const tunnelTarget = `${m.info.tunnelId}.cfargotunnel.com`;
  const marked = records.filter((record) => record.comment?.includes(MARKER_PREFIX) && record.content === tunnelTarget);
  const config = readFileSync(configPath, 'utf8');
  const managedRules = [...config.matchAll(new RegExp(`# ${MANAGED_MARKER} ([^\\s·]+)`, 'g'))].map((match) => match[1] as string);
  const where = `round ${round} (${action}, seed ${seed})`;
  for (const route of all.filter((candidate) => candidate.status === 'active' && candidate.hostname.startsWith('chaos-'))) {
    const own = marked.filter((record) => record.name === route.hostname);
    if (own.length !== 1) violations.push(`${where}: active ${route.hostname} has ${own.length} marked records`);
    const rules = managedRules.filter((hostname) => hostname === route.hostname);
    if (rules.length !== 1) violations.push(`${where}: active ${route.hostname} has ${rules.length} rules`);
  }
  for (const record of marked) if (!ledger.has(record.name)) violations.push(`${where}: marked record ${record.name} has no ledger row`);
  for (const hostname of managedRules) if (!ledger.has(hostname)) violations.push(`${where}: managed rule ${hostname} has no ledger row`);

  // Wrong answers: a request answered ok whose route is not active (unless a delete of it was answered ok since), a
  // request answered with an error whose route is active, a delete answered ok whose row or record is still there.
  const active = new Set(all.filter((route) => route.status === 'active').map((route) => route.hostname));
  const deletedOk = new Set(answers.filter((answer) => answer.op === 'delete' && answer.ok).map((answer) => answer.hostname));
  for (const answer of answers) {
    answersChecked += 1;
    if (answer.op === 'request' && answer.ok && !active.has(answer.hostname) && !deletedOk.has(answer.hostname)) {
      violations.push(`${where}: request for ${answer.hostname} answered ok, but the route is not active`);
    }
    if (answer.op === 'request' && !answer.ok && active.has(answer.hostname)) violations.push(`${where}: request for ${answer.hostname} answered an error, but the route is active`);
    if (answer.op === 'delete' && answer.ok && (ledger.has(answer.hostname) || marked.some((record) => record.name === answer.hostname))) {
      violations.push(`${where}: delete of ${answer.hostname} answered done, but its row or record is still there`);
    }
  }
  answers = [];
}

/** Stops what a run left: its manager (cleanly first) and every cloudflared on its config.yml. */
async function cleanUpRun(): Promise<void> {
  try {
    if (manager && manager.child.exitCode === null) await stopManager(manager, 'SIGTERM');
  } finally {
    manager = null;
    for (const pid of [...managerPids.splice(0), ...cloudflaredPidsFor(configPath)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

afterAll(async () => {
  await cleanUpRun();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.each([
  { label: 'the stand-in', env: { TM_CLOUDFLARED: 'standin' }, skip: false },
  { label: 'the real cloudflared', env: { TM_CLOUDFLARED: realBinary ?? '' }, skip: realBinary === null },
])('chaos on $label', ({ label, env, skip }) => {
  it.skipIf(skip)('holds the invariants through random kills, API faults and restarts', async () => {
    console.log(`chaos on ${label}: seed ${seed} (replay with TM_CHAOS_SEED=${seed}), budget ${budgetMs / 1000} s`);
    random = seededRandom(seed);
    answers = [];
    violations.length = 0;
    unansweredAtStop = 0;
    const dir = mkdtempSync(join(tmpdir(), 'tm-chaos-'));
    dirs.push(dir);
    dataDir = join(dir, 'data');
    configFile = join(dir, 'tunnel-manager.yml');
    configPath = join(dataDir, 'cloudflared', 'config.yml');
    cloudflaredEnv = env;
    edgePort = await freePort();
    const projects = await reservedProjects();
    writeFileSync(
      configFile,
      [
        `dataDir: ${dataDir}`,
        `projects: ${JSON.stringify(projects)}`,
        'cloudflared:',
        '  metricsAddress: 127.0.0.1:0',
        'health:',
        '  probeIntervalSeconds: 1',
        'restart:',
        '  startTimeoutSeconds: 20',
        '  stopGraceSeconds: 5',
        '  backoffSeconds: [2, 4, 8]',
        'reload:',
        '  drainGraceSeconds: 1',
        // A test's own polling is not what the per-project call limit is about (test/e2e/limits.test.ts is).
        'limits:',
        '  toolCallsPerMinute: 0',
        '',
      ].join('\n'),
    );
    const origin = await startOriginInRange(...projectPorts({ projects }, 'consilio'), 'chaos-origin');
    const port = (origin.address() as { port: number }).port;
    try {
      manager = await startManager();
      await tunnelRunningWithin(manager, 60_000, 'the tunnel to start');
      expect((await call(manager.consilio, 'port_allocate', { port, purpose: 'chaos' })).isError).toBe(false);

      const started = Date.now();
      const counts: Record<string, number> = {};
      let round = 0;
      while (Date.now() - started < budgetMs) {
        round += 1;
        const action = pick(['kill-manager', 'kill-manager', 'kill-cloudflared', 'api-fault', 'clean-restart'] as const);
        counts[action] = (counts[action] ?? 0) + 1;
        const m: Manager = manager;
        if (action === 'kill-manager') {
          const operations = burst(m, port, round);
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 1500)));
          await stopManager(m, 'SIGKILL');
          await Promise.allSettled(operations);
          manager = await startManager();
          // Its backoff step (at most 8 s here) and one start (up to 20 s) must fit; 60 s leaves room for a loaded machine.
          await tunnelRunningWithin(manager, 60_000, `round ${round}: the tunnel to run after the manager's restart`);
        } else if (action === 'clean-restart') {
          // A graceful stop with calls in flight answers every one of them (its result, or SHUTTING_DOWN).
          const operations = burst(m, port, round);
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 1500)));
          m.child.kill('SIGTERM');
          const answered = await Promise.all(operations);
          unansweredAtStop += answered.filter((got) => !got).length;
          if (answered.includes(false)) violations.push(`round ${round} (clean-restart, seed ${seed}): ${answered.filter((got) => !got).length} call(s) in flight got no answer at the stop`);
          await m.exited;
          await closeClients(m);
          manager = await startManager();
          // A clean restart is not a crash: up again at once (10 s budget in the sandbox).
          await tunnelRunningWithin(manager, 10_000, `round ${round}: the tunnel to run within 10 s of a clean restart`).catch((error: Error) =>
            violations.push(`round ${round} (clean-restart, seed ${seed}): ${error.message}`),
          );
        } else if (action === 'kill-cloudflared') {
          const pid = await waitUntil(
            async () => {
              const status = await call<{ state: string; pid: number | null }>(m.ms, 'tunnel_get_status');
              return !status.isError && status.data.state.startsWith('running') && status.data.pid !== null ? status.data.pid : undefined;
            },
            30_000,
            `round ${round}: a running cloudflared to kill`,
          );
          process.kill(pid, 'SIGKILL');
          // At once, or the first backoff steps (2, 4, 8 s) if it was already failing.
          await tunnelRunningWithin(m, 60_000, `round ${round}: the tunnel to run after cloudflared was killed`).catch((error: Error) =>
            violations.push(`round ${round} (kill-cloudflared, seed ${seed}): ${error.message}`),
          );
        } else {
          await setFaults(m, [{ route: pick(['POST /zones/:zone/dns_records', 'DELETE /zones/:zone/dns_records/:record']), status: pick([500, 502, 503, 504]) }]);
          await Promise.allSettled(burst(m, port, round));
          await setFaults(m, []);
        }
        await checkInvariants(manager, round, action);
      }
      console.log(
        `chaos on ${label}: ${round} rounds (${JSON.stringify(counts)}), ${answersChecked} answers checked, ${unansweredAtStop} calls unanswered at a stop, ${violations.length} violations, seed ${seed}`,
      );
      expect(violations).toEqual([]);
      expect(round).toBeGreaterThan(3);
    } finally {
      origin.close();
      await cleanUpRun();
    }
  }, 600_000);
});
