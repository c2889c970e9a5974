import { describe, expect, it } from 'vitest';
import { parse } from 'graphql';
import { readTrafficAnswer, trafficQuery, TRAFFIC_PAGE_SIZE } from '../../../src/cloudflare/traffic-analytics.ts';
import { planChunks, summarizeHost } from '../../../src/app/use-cases/traffic-summary.ts';

/** The pure parts of tunnel_get_traffic: the query sent, the answer read, the chunks planned, one hostname's figures. */

const NOW = Date.parse('2026-12-07T12:30:00Z');
const DAY = 86_400;

describe('trafficQuery', () => {
  it('is a valid GraphQL document with one aliased node per chunk, and carries every value as a variable', () => {
    const chunks = planChunks(NOW, 7 * DAY, null).chunks;
    const { query, variables } = trafficQuery({ zoneId: 'z1', hostnames: ['app.153.se', 'b.153.se'], chunks, withLimits: true });
    const document = parse(query);
    expect(document.definitions).toHaveLength(1);
    expect(chunks).toHaveLength(7);
    for (let index = 0; index < 7; index += 1) expect(query).toContain(`c${index}: httpRequestsAdaptiveGroups(`);
    expect(query).toContain('settings { httpRequestsAdaptiveGroups');
    // Nothing of the caller's reaches the text: hostnames and times are variables only.
    expect(query).not.toContain('app.153.se');
    expect(variables.zoneTag).toBe('z1');
    expect(variables.f0).toEqual({ datetime_geq: '2026-11-30T12:30:00Z', datetime_lt: '2026-12-01T12:30:00Z', clientRequestHTTPHost_in: ['app.153.se', 'b.153.se'], requestSource: 'eyeball' });
  });

  it('leaves the settings node out when the limits are known', () => {
    const { query } = trafficQuery({ zoneId: 'z1', hostnames: ['a.153.se'], chunks: planChunks(NOW, 3_600, null).chunks, withLimits: false });
    expect(query).not.toContain('settings');
  });
});

describe('readTrafficAnswer', () => {
  const group = (host: string, hour: string, status: number, count: number, bytes: number) => ({
    count,
    sum: { edgeResponseBytes: bytes },
    dimensions: { clientRequestHTTPHost: host, datetimeHour: hour, edgeResponseStatus: status },
  });

  it('reads the rows of the nodes that answered, the limits, and names the chunk of each error', () => {
    const answer = readTrafficAnswer(
      {
        data: {
          viewer: {
            zones: [
              {
                settings: { httpRequestsAdaptiveGroups: { enabled: true, maxDuration: 86_400, notOlderThan: 691_200, maxPageSize: 10_000 } },
                c0: null,
                c1: [group('App.153.se', '2026-12-07T11:00:00Z', 200, 30, 3_000), group('app.153.se', '2026-12-07T11:00:00Z', 500, 10, 900)],
              },
            ],
          },
        },
        errors: [{ message: 'cannot request data older than 691200s', path: ['viewer', 'zones', 0, 'c0'], extensions: { code: 'bad_request' } }],
      },
      2,
    );
    expect(answer.limits).toEqual({ enabled: true, maxDurationSeconds: 86_400, notOlderThanSeconds: 691_200, maxPageSize: 10_000 });
    expect(answer.rows).toEqual([
      { hostname: 'app.153.se', hour: '2026-12-07T11:00:00.000Z', status: 200, requests: 30, bytes: 3_000 },
      { hostname: 'app.153.se', hour: '2026-12-07T11:00:00.000Z', status: 500, requests: 10, bytes: 900 },
    ]);
    expect(answer.problems).toEqual([{ code: 'bad_request', message: 'cannot request data older than 691200s', chunk: 0 }]);
    expect(answer.truncated).toBe(false);
  });

  it('says when a node sent a full page, and when the answer is not GraphQL at all', () => {
    const full = Array.from({ length: TRAFFIC_PAGE_SIZE }, () => group('a.153.se', '2026-12-07T11:00:00Z', 200, 1, 1));
    expect(readTrafficAnswer({ data: { viewer: { zones: [{ c0: full }] } }, errors: null }, 1).truncated).toBe(true);
    const odd = readTrafficAnswer('<html>', 1);
    expect(odd.problems[0]).toMatchObject({ code: 'unreadable', chunk: null });
    expect(odd.rows).toEqual([]);
  });
});

describe('planChunks', () => {
  it('asks one day per node until the limits are known, the last chunk ending now', () => {
    const plan = planChunks(NOW, DAY, null);
    expect(plan.chunks).toEqual([{ from: new Date(NOW - DAY * 1000), to: new Date(NOW) }]);
    expect(plan.cut).toBeNull();
    expect(planChunks(NOW, 3_600, null).chunks).toHaveLength(1);
  });

  it('uses the plan\'s node width and cuts the window to the history the plan keeps, saying so', () => {
    const limits = { enabled: true, maxDurationSeconds: 3 * DAY, notOlderThanSeconds: 2 * DAY, maxPageSize: 10_000 };
    const plan = planChunks(NOW, 7 * DAY, limits);
    expect(plan.chunks).toHaveLength(1);
    expect(plan.from.getTime()).toBeGreaterThan(NOW - 2 * DAY * 1000);
    expect(plan.cut).toMatch(/keeps 48 hours of traffic/);
    const wide = planChunks(NOW, 7 * DAY, { ...limits, notOlderThanSeconds: 30 * DAY });
    expect(wide.chunks.map((chunk) => (chunk.to.getTime() - chunk.from.getTime()) / 1000)).toEqual([3 * DAY, 3 * DAY, DAY]);
    expect(wide.cut).toBeNull();
  });
});

describe('summarizeHost', () => {
  it('adds up requests, bytes and classes, ranks statuses, and lists every hour of the window', () => {
    const from = new Date(NOW - 3 * 3_600_000);
    const rows = [
      { hostname: 'a.153.se', hour: '2026-12-07T10:00:00.000Z', status: 200, requests: 25, bytes: 2_500 },
      { hostname: 'a.153.se', hour: '2026-12-07T12:00:00.000Z', status: 200, requests: 5, bytes: 500 },
      { hostname: 'a.153.se', hour: '2026-12-07T12:00:00.000Z', status: 500, requests: 10, bytes: 700 },
      { hostname: 'a.153.se', hour: '2026-12-07T12:00:00.000Z', status: 404, requests: 2, bytes: 100 },
    ];
    const traffic = summarizeHost({ hostname: 'a.153.se', project: 'odin', rows, from, to: new Date(NOW), asOf: new Date(NOW) });
    expect(traffic).toMatchObject({ requests: 42, bytes: 3_800, byStatusClass: { '2xx': 30, '3xx': 0, '4xx': 2, '5xx': 10 }, available: true });
    expect(traffic.errorShare).toBeCloseTo(10 / 42);
    expect(traffic.topStatusCodes).toEqual([
      { status: 200, requests: 30 },
      { status: 500, requests: 10 },
      { status: 404, requests: 2 },
    ]);
    expect(traffic.hourly.map((hour) => [hour.hour, hour.requests, hour.errors])).toEqual([
      ['2026-12-07T09:00:00.000Z', 0, 0],
      ['2026-12-07T10:00:00.000Z', 25, 0],
      ['2026-12-07T11:00:00.000Z', 0, 0],
      ['2026-12-07T12:00:00.000Z', 17, 10],
    ]);
  });

  it('has no error share without a request', () => {
    expect(summarizeHost({ hostname: 'a.153.se', project: 'odin', rows: [], from: new Date(NOW - 3_600_000), to: new Date(NOW), asOf: new Date(NOW) }).errorShare).toBeNull();
  });
});
