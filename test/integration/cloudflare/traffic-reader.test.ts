import { afterEach, describe, expect, it } from 'vitest';
import { createCloudflareProvider } from '../../../src/cloudflare/cloudflare-provider.ts';
import { RateLimiter } from '../../../src/cloudflare/rate-limiter.ts';
import { TrafficReader, type TrafficTarget } from '../../../src/app/use-cases/traffic.ts';
import { FIXTURE_ZONES, startCloudflareEmulator, type CloudflareEmulator } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { TrafficLog } from '../../../src/sandbox/traffic-log.ts';
import { runForProject } from '../../../src/request-context.ts';
import { toErrorShape } from '../../../src/errors.ts';

/**
 * The traffic reader over the real provider (the official SDK through the shared rate limiter) against the Cloudflare
 * API emulator over HTTP, which executes the GraphQL Analytics query with the `graphql` library on recorded traffic:
 * what one call costs, the minute of memory, the plan's history, and the answers without the permission.
 */

const NO_ANALYTICS = 'no-analytics-token-000000000000000000000000';
const APP: TrafficTarget = { hostname: 'app.153.se', project: 'consilio', zoneId: FIXTURE_ZONES.main.id, zoneName: '153.se' };
const WWW: TrafficTarget = { hostname: 'www.153.se', project: 'consilio', zoneId: FIXTURE_ZONES.main.id, zoneName: '153.se' };
const BLOG: TrafficTarget = { hostname: 'blog.horizon-lab.dev', project: 'odin', zoneId: FIXTURE_ZONES.paid.id, zoneName: 'horizon-lab.dev' };

let emulator: CloudflareEmulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function world(options: { token?: 'full' | 'no-analytics'; proHistorySeconds?: number; limiter?: RateLimiter } = {}) {
  const traffic = new TrafficLog();
  const now = Date.now();
  for (let index = 0; index < 30; index += 1) traffic.record({ at: now - 120_000, host: 'app.153.se', status: 200, bytes: 120 });
  for (let index = 0; index < 10; index += 1) traffic.record({ at: now - 60_000, host: 'app.153.se', status: 500, bytes: 40 });
  traffic.record({ at: now - 60_000, host: 'www.153.se', status: 301, bytes: 10 });
  traffic.record({ at: now - 5 * 86_400_000, host: 'blog.horizon-lab.dev', status: 200, bytes: 9 });
  traffic.record({ at: now - 60_000, host: 'blog.horizon-lab.dev', status: 200, bytes: 9 });
  emulator = await startCloudflareEmulator({
    traffic,
    extraTokens: [{ token: NO_ANALYTICS, scopes: ['zone:read', 'dns:read', 'dns:edit', 'tunnel:read', 'tunnel:edit'] }],
    ...(options.proHistorySeconds ? { analyticsLimits: { pro: { notOlderThan: options.proHistorySeconds } } } : {}),
  });
  const provider = createCloudflareProvider({
    apiBaseUrl: emulator.apiBaseUrl,
    apiToken: options.token === 'no-analytics' ? NO_ANALYTICS : emulator.token,
    accountId: emulator.accountId,
    tunnelId: emulator.tunnelId,
    rateLimiter: options.limiter ?? new RateLimiter(),
    retry: { maxAttempts: 1 },
  });
  const graphqlRequests = () => emulator!.requests().filter((entry) => entry.route === 'POST /graphql').length;
  return { provider, graphqlRequests, emulator };
}

describe('TrafficReader against the emulator', () => {
  it('reads every hostname of a zone in one request, one request per zone, and the figures are the recorded traffic', async () => {
    const { provider, graphqlRequests } = await world();
    const reader = new TrafficReader({ read: (input) => provider.zoneTraffic(input) });
    const answer = await reader.read([APP, WWW, BLOG], '24h');
    expect(graphqlRequests()).toBe(2);
    expect(answer.available).toBe(true);
    expect(answer.hostnames.map((host) => [host.hostname, host.requests, host.bytes])).toEqual([
      ['app.153.se', 40, 30 * 120 + 10 * 40],
      ['blog.horizon-lab.dev', 1, 9],
      ['www.153.se', 1, 10],
    ]);
    expect(answer.hostnames[0]).toMatchObject({ byStatusClass: { '2xx': 30, '5xx': 10 }, errorShare: 0.25 });
    expect(answer.hostnames[2]?.byStatusClass['3xx']).toBe(1);
  });

  it('answers a call within the minute from memory, shares one request between concurrent calls, and asks again after the minute', async () => {
    const { provider, graphqlRequests } = await world();
    let offset = 0;
    const reader = new TrafficReader({ read: (input) => provider.zoneTraffic(input), now: () => Date.now() + offset });
    const [first, second] = await Promise.all([reader.read([APP], '1h'), reader.read([APP], '1h')]);
    expect(graphqlRequests()).toBe(1);
    expect(second.hostnames[0]?.asOf).toBe(first.hostnames[0]?.asOf);
    await reader.read([APP], '1h');
    // Another window of the same name is another answer.
    await reader.read([APP], '24h');
    expect(graphqlRequests()).toBe(2);
    offset = 61_000;
    await reader.read([APP], '1h');
    expect(graphqlRequests()).toBe(3);
    expect(reader.spent).toEqual({ requests: 3, queries: 3 });
  });

  it("counts against the caller's share of the budget only when it reaches Cloudflare", async () => {
    const limiter = new RateLimiter({ limit: 10, projectShare: 0.2 });
    const { provider, graphqlRequests } = await world({ limiter });
    const reader = new TrafficReader({ read: (input) => provider.zoneTraffic(input) });
    // consilio's share is 2 requests: 50 calls in its name within the minute spend one.
    await runForProject('consilio', async () => {
      for (let call = 0; call < 50; call += 1) await reader.read([APP], '1h');
    });
    expect(graphqlRequests()).toBe(1);
    expect(limiter.stats().inWindow).toBe(1);
  });

  it('cuts a window longer than the plan keeps, from the settings node, and says so', async () => {
    const { provider } = await world({ proHistorySeconds: 3 * 86_400 });
    const reader = new TrafficReader({ read: (input) => provider.zoneTraffic(input) });
    const first = await reader.read([BLOG], '7d');
    // The first read does not know the plan yet: a day per chunk, and the chunks older than the plan keeps are refused.
    expect(first.notes.some((note) => note.includes('Cloudflare refused'))).toBe(true);
    expect(first.hostnames[0]?.requests).toBe(1);
    const later = new TrafficReader({ read: (input) => provider.zoneTraffic(input) });
    await later.read([BLOG], '1h');
    const cut = await later.read([BLOG], '7d');
    expect(cut.notes).toEqual([expect.stringContaining('keeps 72 hours of traffic')]);
    expect(Date.parse(cut.to) - Date.parse(cut.from)).toBeLessThan(3 * 86_400_000);
    expect(cut.hostnames[0]).toMatchObject({ available: true, requests: 1 });
  });

  it('a token without Analytics Read: available false with the reason and the fix, never an error', async () => {
    const { provider } = await world({ token: 'no-analytics' });
    const reader = new TrafficReader({ read: (input) => provider.zoneTraffic(input) });
    const answer = await reader.read([APP], '24h');
    expect(answer).toMatchObject({ available: false, reason: expect.stringContaining('may not read the analytics of 153.se'), fix: expect.stringContaining('Analytics:Read') });
    expect(answer.hostnames[0]).toMatchObject({ available: false, requests: 0, asOf: null });
  });

  it('a rate-limited answer is the caller\'s error with the time to wait, and is not kept', async () => {
    const { provider, graphqlRequests, emulator: running } = await world();
    const reader = new TrafficReader({ read: (input) => provider.zoneTraffic(input) });
    running.setFaults([{ route: 'POST /graphql', status: 429, retryAfterSeconds: 7, times: 1 }]);
    const refused = await reader.read([APP], '1h').then(
      () => null,
      (error: unknown) => toErrorShape(error),
    );
    expect(refused).toMatchObject({ code: 'CLOUDFLARE_RATE_LIMITED', fix: expect.stringContaining('7') });
    const answer = await reader.read([APP], '1h');
    expect(answer.hostnames[0]?.requests).toBe(40);
    expect(graphqlRequests()).toBe(2);
  });
});
