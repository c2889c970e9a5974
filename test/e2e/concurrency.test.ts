import type { Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { EventRow } from '../../src/store/events-repository.ts';
import { call, mcpClient, portOf, startOriginInRange, startTestService, viaEdge, projectPorts } from '../helpers/service.ts';

/**
 * Parallel requests over real MCP HTTP sessions against one service. For one name: exactly one route — one DNS
 * record, one rule, one ledger row, one `route.created` — and every other caller gets a precise answer. What
 * applies (src/app/use-cases/backend.ts): the name is reserved in the ledger (status `pending`) by the first saga; a request
 * that finds it reserved, or loses the reservation race in the saga's reserve step, gets HOSTNAME_TAKEN naming the
 * holder. Only the identical request (same owner, same port) that arrives once the route is `active` is answered as
 * an idempotent success ("already published"). Different names all proceed.
 */

type Answer = {
  isError: boolean;
  data: {
    code?: string;
    fix?: string;
    details?: { owner?: string; status?: string };
    plan?: string[];
    timings?: { step: string }[];
    dnsRecordId?: string | null;
    hostname?: string;
  };
};

let env: Awaited<ReturnType<typeof startTestService>>;
let consilio: Client;
let odin: Client;
const origins: Server[] = [];
const ports: Record<string, number> = {};
const events: EventRow[] = [];
let unsubscribe: () => void = () => undefined;

const recordsNamed = (hostname: string) => env.service.sandbox!.emulator.state().records.filter((record) => record.name === hostname);
const rulesFor = (hostname: string) =>
  readFileSync(env.config.cloudflared.configPath, 'utf8').split('\n').filter((line) => line.trim() === `- hostname: ${hostname}` || line.trim() === `hostname: ${hostname}`).length;

const created = (answer: Answer) => !answer.isError && (answer.data.timings ?? []).some((timing) => timing.step === 'activate');
const idempotent = (answer: Answer) => !answer.isError && JSON.stringify(answer.data.plan) === JSON.stringify(['already published: nothing to do']);

beforeAll(async () => {
  env = await startTestService();
  const info = env.service.sandboxInfo!;
  consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  odin = await mcpClient(info.mcpUrl, info.tokens.odin!);
  for (const [project, client] of [
    ['consilio', consilio],
    ['odin', odin],
  ] as const) {
    const origin = await startOriginInRange(...projectPorts(env.config, project, [0.5, 1]), `${project}-web`);
    origins.push(origin);
    ports[project] = portOf(origin);
    const allocated = await call(client, 'port_allocate', { port: ports[project], purpose: 'concurrency tests' });
    expect(allocated.isError, JSON.stringify(allocated.data)).toBe(false);
  }
  unsubscribe = env.service.bus.subscribe((event) => events.push(event));
}, 90_000);

afterAll(async () => {
  unsubscribe();
  await Promise.all([consilio?.close(), odin?.close()]);
  origins.forEach((origin) => origin.close());
  await env?.stop();
});

/** The one route for `hostname`: one ledger row, one record, one rule, one route.created, traffic reaches `project`. */
async function expectExactlyOneRoute(hostname: string, project: string): Promise<void> {
  const route = env.service.backend.findRoute(hostname);
  expect(route).toMatchObject({ project, status: 'active', targetPort: ports[project] });
  const records = recordsNamed(hostname);
  expect(records).toHaveLength(1);
  expect(records[0]!.comment).toBe(`tunnel-manager:owner=${project}`);
  expect(route!.dnsRecordId).toBe(records[0]!.id);
  expect(rulesFor(hostname)).toBe(1);
  expect(events.filter((event) => event.kind === 'route.created' && event.data.hostname === hostname)).toHaveLength(1);
  expect(await viaEdge(env.service.sandboxInfo!.edgeUrl, hostname)).toMatchObject({ status: 200, body: expect.stringContaining(`hello from ${project}-web`) });
}

/** A loser from the winner's own project: taken while the route was pending, or the idempotent answer once active. */
function expectSameOwnerLoser(answer: Answer, winner: Answer): void {
  if (answer.isError) {
    expect(answer.data).toMatchObject({ code: 'HOSTNAME_TAKEN', details: { owner: expect.any(String), status: 'pending' } });
    expect(answer.data.fix).toBeTruthy();
  } else {
    expect(idempotent(answer), JSON.stringify(answer.data)).toBe(true);
    expect(answer.data.dnsRecordId).toBe(winner.data.dnsRecordId);
  }
}

describe('50 parallel requests for one name make exactly one route', () => {
  it('from one project: one creates it, every other one is told it is taken (or, once active, that it is already published)', async () => {
    const hostname = 'race-one.153.se';
    const answers = (await Promise.all(
      Array.from({ length: 50 }, () => call(consilio, 'tunnel_request_cname', { subdomain: 'race-one', targetPort: ports.consilio })),
    )) as Answer[];
    const winners = answers.filter(created);
    expect(winners, JSON.stringify(answers.map((a) => a.data.code ?? 'ok'))).toHaveLength(1);
    for (const answer of answers.filter((a) => a !== winners[0])) {
      expectSameOwnerLoser(answer, winners[0]!);
      if (answer.isError) expect(answer.data.details!.owner).toBe('consilio');
    }
    await expectExactlyOneRoute(hostname, 'consilio');

    // Now that it is active, the identical request is answered as done and changes nothing…
    const again: Answer = await call(consilio, 'tunnel_request_cname', { subdomain: 'race-one', targetPort: ports.consilio });
    expect(idempotent(again), JSON.stringify(again.data)).toBe(true);
    expect(again.data.dnsRecordId).toBe(winners[0]!.data.dnsRecordId);
    // …while another project is refused.
    const other: Answer = await call(odin, 'tunnel_request_cname', { subdomain: 'race-one', targetPort: ports.odin });
    expect(other.data).toMatchObject({ code: 'HOSTNAME_TAKEN', details: { owner: 'consilio', status: 'active' } });
    await expectExactlyOneRoute(hostname, 'consilio');
  }, 120_000);

  it('from two projects: one project wins, the other gets HOSTNAME_TAKEN every time', async () => {
    const hostname = 'race-two.153.se';
    const callers = Array.from({ length: 50 }, (_, index) => (index % 2 === 0 ? 'consilio' : 'odin'));
    const answers = (await Promise.all(
      callers.map((project) => call(project === 'consilio' ? consilio : odin, 'tunnel_request_cname', { subdomain: 'race-two', targetPort: ports[project] })),
    )) as Answer[];
    const winners = answers.filter(created);
    expect(winners, JSON.stringify(answers.map((a) => a.data.code ?? 'ok'))).toHaveLength(1);
    const winner = callers[answers.indexOf(winners[0]!)]!;
    const loser = winner === 'consilio' ? 'odin' : 'consilio';
    answers.forEach((answer, index) => {
      if (answer === winners[0]) return;
      if (callers[index] === winner) {
        expectSameOwnerLoser(answer, winners[0]!);
      } else {
        // Never RECORD_EXISTS: the name is reserved in the ledger before its record is made, and the ledger is checked again after the lookup.
        expect(answer.isError, JSON.stringify(answer.data)).toBe(true);
        expect(answer.data).toMatchObject({ code: 'HOSTNAME_TAKEN', details: { owner: winner } });
      }
      if (answer.isError) expect(answer.data.details!.owner).toBe(winner);
    });
    expect(answers.filter((_, index) => callers[index] === loser).every((answer) => answer.isError)).toBe(true);
    await expectExactlyOneRoute(hostname, winner);
  }, 120_000);
});

describe('different names in parallel', () => {
  it('all succeed, from two projects at once, each with its record and its rule', async () => {
    const wanted = Array.from({ length: 16 }, (_, index) => ({ project: index % 2 === 0 ? 'consilio' : 'odin', subdomain: `par-${index}` }));
    const answers = (await Promise.all(
      wanted.map(({ project, subdomain }) => call(project === 'consilio' ? consilio : odin, 'tunnel_request_cname', { subdomain, targetPort: ports[project] })),
    )) as Answer[];
    expect(answers.filter((answer) => answer.isError).map((answer) => answer.data)).toEqual([]);
    expect(answers.every(created)).toBe(true);
    for (const { project, subdomain } of wanted) await expectExactlyOneRoute(`${subdomain}.153.se`, project);
  }, 120_000);
});
