import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startWithConsilioOrigin } from '../../helpers/service.ts';

/**
 * The routes use case (src/app/use-cases/routes.ts) on its own questions: validation, the route quota, a record that
 * is not ours, the plan, and that a name is planned once per request. One service in sandbox mode (real SQLite file,
 * the Cloudflare emulator over HTTP on 127.0.0.1, the stand-in cloudflared), asked through the tool that calls it.
 * A failure here points at routes.ts; the saga's own steps are test/integration/app/route-effects.test.ts.
 */

type ToolError = { code: string; message: string; fix: string; details: Record<string, unknown> };
type CnameAnswer = { hostname: string; zone: string; plan: string[]; dryRun: boolean } & ToolError;

let setup: Awaited<ReturnType<typeof startWithConsilioOrigin>>;
let consilio: Client;

beforeAll(async () => {
  setup = await startWithConsilioOrigin({ name: 'routes-use-case', overrides: { limits: { toolCallsPerMinute: 0, routesPerProject: 2 } } });
  consilio = setup.consilio;
}, 120_000);
afterAll(async () => {
  await setup.stop();
});

const emulator = () => {
  const sandbox = setup.env.service.sandbox;
  if (!sandbox) throw new Error('the test service runs in sandbox mode');
  return sandbox.emulator;
};
const recordsNamed = (hostname: string) => emulator().state().records.filter((record) => record.name === hostname);
const requestCname = (args: Record<string, unknown>) => call<CnameAnswer>(consilio, 'tunnel_request_cname', { targetPort: setup.port, ...args });
const dnsCallsSince = (since: number) =>
  emulator()
    .requests()
    .filter((entry) => entry.at >= since && (entry.route === 'GET /zones/:zone/dns_records' || entry.route === 'POST /zones/:zone/dns_records'))
    .map((entry) => entry.method);

describe('routes.ts: validation', () => {
  it('a subdomain that is no DNS name: HOSTNAME_INVALID naming `subdomain`, and Cloudflare is not asked', async () => {
    const since = Date.now();
    const answer = await requestCname({ subdomain: 'Bad_Name', dryRun: true });
    expect(answer.isError).toBe(true);
    expect(answer.data).toMatchObject({ code: 'HOSTNAME_INVALID', details: { argument: 'subdomain' } });
    expect(dnsCallsSince(since)).toEqual([]);
  });

  it('a domain that is no zone of the account: ZONE_NOT_FOUND listing the zones', async () => {
    const answer = await requestCname({ subdomain: 'x', domain: 'nowhere.example', dryRun: true });
    expect(answer.data).toMatchObject({ code: 'ZONE_NOT_FOUND', details: { argument: 'domain' } });
    expect(answer.data.fix).toContain('153.se');
  });

  it('the domain is a Hostname: written in capitals it names the same zone', async () => {
    const answer = await requestCname({ subdomain: 'caps', domain: '153.SE', dryRun: true });
    expect(answer.isError, JSON.stringify(answer.data)).toBe(false);
    expect(answer.data).toMatchObject({ hostname: 'caps.153.se', zone: '153.se' });
  });
});

describe('routes.ts: a record that is not ours', () => {
  it('a foreign record under the name: RECORD_EXISTS naming it, nothing changed', async () => {
    const before = emulator().state().records;
    const answer = await requestCname({ subdomain: 'www' });
    expect(answer.data).toMatchObject({ code: 'RECORD_EXISTS', details: { reason: 'foreign', hostname: 'www.153.se' } });
    expect(setup.env.service.backend.findRoute('www.153.se')).toBeUndefined();
    expect(emulator().state().records).toEqual(before);
  });
});

describe('routes.ts: the plan', () => {
  it('a dry run answers the steps it would take and changes nothing', async () => {
    const answer = await requestCname({ subdomain: 'dry', dryRun: true });
    expect(answer.data.dryRun).toBe(true);
    expect(answer.data.plan.join('\n')).toMatch(/create the proxied CNAME dry\.153\.se → .* marked as owned by consilio/);
    expect(recordsNamed('dry.153.se')).toEqual([]);
    expect(setup.env.service.backend.findRoute('dry.153.se')).toBeUndefined();
  });

  it('a request looks at the name once: one lookup, one create (the saga carries the plan, it does not plan again)', async () => {
    const since = Date.now();
    const answer = await requestCname({ subdomain: 'once' });
    expect(answer.isError, JSON.stringify(answer.data)).toBe(false);
    expect(dnsCallsSince(since)).toEqual(['GET', 'POST']);
    expect(recordsNamed('once.153.se')).toHaveLength(1);
  });
});

describe('routes.ts: the route quota', () => {
  it('limits.routesPerProject is checked before Cloudflare is asked: ROUTE_QUOTA_EXCEEDED, nothing changed', async () => {
    const second = await requestCname({ subdomain: 'second' });
    expect(second.isError, JSON.stringify(second.data)).toBe(false);
    const since = Date.now();
    const third = await requestCname({ subdomain: 'third', dryRun: true });
    expect(third.data.code).toBe('ROUTE_QUOTA_EXCEEDED');
    expect(dnsCallsSince(since)).toEqual([]);
    expect(setup.env.service.backend.findRoute('third.153.se')).toBeUndefined();
  });
});
