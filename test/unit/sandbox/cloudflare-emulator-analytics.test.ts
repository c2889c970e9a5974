import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURE_ZONES, startCloudflareEmulator, type CloudflareEmulator } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { TrafficLog } from '../../../src/sandbox/traffic-log.ts';

const MAIN = FIXTURE_ZONES.main.id; // 153.se, Free
const PAID = FIXTURE_ZONES.paid.id; // horizon-lab.dev, Pro
const NO_ANALYTICS = 'no-analytics-token-000000000000000000000000';
const HOUR = 3_600_000;
/** The start of the hour two hours ago: recent enough for every plan, and a whole hour behind us. */
const H0 = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The query the manager sends (docs: issue 24), verbatim. */
const MANAGER_QUERY = `query TunnelManagerTraffic($zoneTag: string!, $f0: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!, $f1: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!) {
  viewer {
    zones(filter: { zoneTag: $zoneTag }) {
      settings { httpRequestsAdaptiveGroups { enabled maxDuration notOlderThan maxPageSize } }
      c0: httpRequestsAdaptiveGroups(limit: 10000, filter: $f0, orderBy: [datetimeHour_ASC]) {
        count
        sum { edgeResponseBytes }
        dimensions { clientRequestHTTPHost datetimeHour edgeResponseStatus }
      }
      c1: httpRequestsAdaptiveGroups(limit: 10000, filter: $f1, orderBy: [datetimeHour_ASC]) { count sum { edgeResponseBytes } dimensions { clientRequestHTTPHost datetimeHour edgeResponseStatus } }
    }
  }
}`;

let traffic: TrafficLog;
let emulator: CloudflareEmulator;

beforeEach(async () => {
  traffic = new TrafficLog();
  // In H0: app.153.se 3×200 (100 bytes each) and 2×500 (10 each) in two minutes, www.153.se 1×200; in H0+1h: app 1×404.
  for (const at of [H0 + 1_000, H0 + 2_000, H0 + 61_000]) traffic.record({ at, host: 'app.153.se', status: 200, bytes: 100 });
  for (const at of [H0 + 3_000, H0 + 62_000]) traffic.record({ at, host: 'app.153.se', status: 500, bytes: 10 });
  traffic.record({ at: H0 + 5_000, host: 'www.153.se', status: 200, bytes: 1 });
  traffic.record({ at: H0 + HOUR + 5_000, host: 'app.153.se', status: 404, bytes: 4 });
  traffic.record({ at: H0 + 5_000, host: 'blog.horizon-lab.dev', status: 200, bytes: 9 });
  traffic.record({ at: H0 + 5_000, host: 'nowhere.example', status: 200, bytes: 9 });
  emulator = await startCloudflareEmulator({
    traffic,
    extraTokens: [{ token: NO_ANALYTICS, scopes: ['zone:read', 'dns:read'] }],
    analyticsLimits: { pro: { notOlderThan: 3 * 86_400 } },
  });
});
afterEach(async () => {
  await emulator.close();
});

async function graphql(query: string, variables: Record<string, unknown> = {}, token = emulator.token) {
  const response = await fetch(`${emulator.apiBaseUrl}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, any> };
}

const range = (from: number, to: number, extra: Record<string, unknown> = {}) => ({ datetime_geq: iso(from), datetime_lt: iso(to), ...extra });

describe('Cloudflare emulator: GraphQL Analytics', () => {
  it('answers the manager query verbatim: groups per host, hour and status, per chunk, with the settings', async () => {
    const { status, json } = await graphql(MANAGER_QUERY, {
      zoneTag: MAIN,
      f0: range(H0, H0 + HOUR, { clientRequestHTTPHost_in: ['app.153.se'], requestSource: 'eyeball' }),
      f1: range(H0 + HOUR, H0 + 2 * HOUR, { clientRequestHTTPHost_in: ['app.153.se'], requestSource: 'eyeball' }),
    });
    expect(status).toBe(200);
    expect(json.errors).toBeNull();
    const zone = json.data.viewer.zones[0];
    expect(zone.settings).toEqual({ httpRequestsAdaptiveGroups: { enabled: true, maxDuration: 86_400, notOlderThan: 691_200, maxPageSize: 10_000 } });
    expect(zone.c0).toEqual([
      { count: 3, sum: { edgeResponseBytes: 300 }, dimensions: { clientRequestHTTPHost: 'app.153.se', datetimeHour: iso(H0), edgeResponseStatus: 200 } },
      { count: 2, sum: { edgeResponseBytes: 20 }, dimensions: { clientRequestHTTPHost: 'app.153.se', datetimeHour: iso(H0), edgeResponseStatus: 500 } },
    ]);
    expect(zone.c1).toEqual([
      { count: 1, sum: { edgeResponseBytes: 4 }, dimensions: { clientRequestHTTPHost: 'app.153.se', datetimeHour: iso(H0 + HOUR), edgeResponseStatus: 404 } },
    ]);
    expect(emulator.requests().at(-1)).toMatchObject({ route: 'POST /graphql', status: 200 });
  });

  it('groups by the dimensions selected: fewer dimensions sum over the others; a fragment counts too', async () => {
    const query = `query($z: string!, $f: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!) { viewer { zones(filter: { zoneTag: $z }) {
      byHour: httpRequestsAdaptiveGroups(limit: 100, filter: $f, orderBy: [datetimeHour_DESC]) { count sum { edgeResponseBytes visits } dimensions { datetimeHour } }
      byStatus: httpRequestsAdaptiveGroups(limit: 100, filter: $f, orderBy: [count_DESC]) { count dimensions { ...S } }
      total: httpRequestsAdaptiveGroups(limit: 100, filter: $f) { count avg { sampleInterval } }
    } } } fragment S on ZoneHttpRequestsAdaptiveGroupsDimensions { edgeResponseStatus }`;
    const { json } = await graphql(query, { z: MAIN, f: range(H0, H0 + 2 * HOUR) });
    expect(json.errors).toBeNull();
    const zone = json.data.viewer.zones[0];
    expect(zone.byHour).toEqual([
      { count: 1, sum: { edgeResponseBytes: 4, visits: 1 }, dimensions: { datetimeHour: iso(H0 + HOUR) } },
      { count: 6, sum: { edgeResponseBytes: 321, visits: 6 }, dimensions: { datetimeHour: iso(H0) } },
    ]);
    expect(zone.byStatus).toEqual([
      { count: 4, dimensions: { edgeResponseStatus: 200 } },
      { count: 2, dimensions: { edgeResponseStatus: 500 } },
      { count: 1, dimensions: { edgeResponseStatus: 404 } },
    ]);
    // Only 153.se's hosts: horizon-lab.dev's and a host in no zone are not counted.
    expect(zone.total).toEqual([{ count: 7, avg: { sampleInterval: 1 } }]);
  });

  it('filters by host, status and time, with AND/OR', async () => {
    const query = `query($z: string!, $f: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!) { viewer { zones(filter: { zoneTag: $z }) {
      httpRequestsAdaptiveGroups(limit: 100, filter: $f) { count dimensions { clientRequestHTTPHost datetimeMinute } } } } }`;
    const minuteTwo = await graphql(query, { z: MAIN, f: range(H0 + 60_000, H0 + 120_000) });
    expect(minuteTwo.json.data.viewer.zones[0].httpRequestsAdaptiveGroups).toEqual([
      { count: 2, dimensions: { clientRequestHTTPHost: 'app.153.se', datetimeMinute: iso(H0 + 60_000) } },
    ]);
    const www = await graphql(query, { z: MAIN, f: range(H0, H0 + 2 * HOUR, { clientRequestHTTPHost: 'www.153.se' }) });
    expect(www.json.data.viewer.zones[0].httpRequestsAdaptiveGroups).toEqual([{ count: 1, dimensions: { clientRequestHTTPHost: 'www.153.se', datetimeMinute: iso(H0) } }]);
    const errors = await graphql(query, {
      z: MAIN,
      f: range(H0, H0 + 2 * HOUR, { clientRequestHTTPHost_neq: 'www.153.se', OR: [{ edgeResponseStatus_geq: 500 }, { edgeResponseStatus: 404 }] }),
    });
    expect(errors.json.data.viewer.zones[0].httpRequestsAdaptiveGroups.reduce((sum: number, row: { count: number }) => sum + row.count, 0)).toBe(3);
    const other = await graphql(query, { z: MAIN, f: range(H0, H0 + 2 * HOUR, { requestSource: 'edgeWorkerFetch' }) });
    expect(other.json.data.viewer.zones[0].httpRequestsAdaptiveGroups).toEqual([]);
  });

  it('answers authz for the dataset of a token without Analytics Read, and of an unknown zone, while other zones answer', async () => {
    const query = `query($f: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!) { viewer { zones(filter: { zoneTag_in: ["${MAIN}", "ffffffffffffffffffffffffffffffff"] }) {
      zoneTag httpRequestsAdaptiveGroups(limit: 10, filter: $f) { count } } } }`;
    const variables = { f: range(H0, H0 + HOUR) };
    const unknown = await graphql(query, variables);
    expect(unknown.status).toBe(200);
    expect(unknown.json.data.viewer.zones).toEqual([
      { zoneTag: MAIN, httpRequestsAdaptiveGroups: [{ count: 6 }] },
      { zoneTag: 'ffffffffffffffffffffffffffffffff', httpRequestsAdaptiveGroups: null },
    ]);
    expect(unknown.json.errors).toEqual([
      {
        message: 'not authorized for that account',
        path: ['viewer', 'zones', 1, 'httpRequestsAdaptiveGroups'],
        locations: expect.any(Array),
        extensions: { code: 'authz', timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      },
    ]);
    const narrow = await graphql(query, variables, NO_ANALYTICS);
    expect(narrow.status).toBe(200);
    expect(narrow.json.data.viewer.zones.map((zone: { httpRequestsAdaptiveGroups: unknown }) => zone.httpRequestsAdaptiveGroups)).toEqual([null, null]);
    expect(narrow.json.errors.map((error: { extensions: { code: string } }) => error.extensions.code)).toEqual(['authz', 'authz']);
  });

  it('refuses an unknown token with the v4 envelope, as every route', async () => {
    const { status, json } = await graphql('{ viewer { zones(filter: {}) { zoneTag } } }', {}, 'unknown-token-000000000000000000000000000');
    expect(status).toBe(403);
    expect(json).toMatchObject({ success: false, errors: [{ code: 9109 }] });
  });

  it('answers node errors for a range wider than maxDuration, older than notOlderThan, without a bound, and a limit over maxPageSize', async () => {
    const query = `query($z: string!, $f: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!, $l: uint64!) { viewer { zones(filter: { zoneTag: $z }) {
      zoneTag httpRequestsAdaptiveGroups(limit: $l, filter: $f) { count } } } }`;
    const ask = async (z: string, f: Record<string, unknown>, l = 10) => {
      const { status, json } = await graphql(query, { z, f, l });
      expect(status).toBe(200);
      expect(json.data.viewer.zones[0]).toEqual({ zoneTag: z, httpRequestsAdaptiveGroups: null });
      return json.errors[0] as { message: string; extensions: { code: string } };
    };
    expect(await ask(MAIN, range(H0 - 86_400_000, H0 + 1_000))).toMatchObject({ message: 'cannot request a time range wider than 86400s', extensions: { code: 'bad_request' } });
    const now = Date.now();
    expect(await ask(MAIN, range(now - 9 * 86_400_000, now - 8.5 * 86_400_000))).toMatchObject({ message: 'cannot request data older than 691200s' });
    // Pro, with a lookback shortened to 3 days by analyticsLimits.
    expect(await ask(PAID, range(now - 4 * 86_400_000, now - 3.5 * 86_400_000))).toMatchObject({ message: 'cannot request data older than 259200s' });
    expect(await ask(MAIN, { datetime_geq: iso(H0) })).toMatchObject({ message: expect.stringContaining('datetime_lt'), extensions: { code: 'bad_request' } });
    expect(await ask(MAIN, range(H0, H0 + HOUR), 10_001)).toMatchObject({ message: 'limit must be less or equal to 10000' });
  });

  it('answers the settings per plan, with analyticsLimits applied', async () => {
    const query = `{ viewer { zones(filter: { zoneTag_in: ["${MAIN}", "${PAID}"] }) { zoneTag settings { httpRequestsAdaptiveGroups { enabled maxDuration notOlderThan maxPageSize availableFields } } } } }`;
    const { json } = await graphql(query);
    expect(json.errors).toBeNull();
    const [free, pro] = json.data.viewer.zones;
    expect(free.settings.httpRequestsAdaptiveGroups).toMatchObject({ enabled: true, maxDuration: 86_400, notOlderThan: 691_200, maxPageSize: 10_000 });
    expect(free.settings.httpRequestsAdaptiveGroups.availableFields).toEqual(expect.arrayContaining(['clientRequestHTTPHost', 'datetimeHour', 'edgeResponseStatus']));
    expect(pro.settings.httpRequestsAdaptiveGroups).toMatchObject({ maxDuration: 259_200, notOlderThan: 259_200 });
  });

  it('answers syntax and validation errors as GraphQL does, HTTP 200 and no data', async () => {
    const syntax = await graphql('{ viewer { zones(filter: { zoneTag: "x" }) { zoneTag }');
    expect(syntax.status).toBe(200);
    expect(syntax.json.data).toBeNull();
    expect(syntax.json.errors[0].message).toMatch(/^Syntax Error/);
    const unknownField = await graphql('{ viewer { zones(filter: { zoneTag: "x" }) { nope } } }');
    expect(unknownField.status).toBe(200);
    expect(unknownField.json.errors[0].message).toContain('Cannot query field "nope"');
  });

  it('answers a fault set on POST /graphql (429 with Retry-After) and logs it', async () => {
    emulator.setFaults([{ route: 'POST /graphql', status: 429, retryAfterSeconds: 7, times: 1 }]);
    const response = await fetch(`${emulator.apiBaseUrl}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emulator.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { zones(filter: {}) { zoneTag } } }' }),
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(await response.json()).toMatchObject({ success: false, errors: [{ code: 971 }] });
    expect(emulator.requests().at(-1)).toMatchObject({ route: 'POST /graphql', status: 429 });
    expect((await graphql('{ viewer { zones(filter: {}) { zoneTag } } }')).json).toEqual({ data: { viewer: { zones: [] } }, errors: null });
  });

  it('answers no rows without a traffic log', async () => {
    const bare = await startCloudflareEmulator();
    try {
      const response = await fetch(`${bare.apiBaseUrl}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bare.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: MANAGER_QUERY, variables: { zoneTag: MAIN, f0: range(H0, H0 + HOUR), f1: range(H0 + HOUR, H0 + 2 * HOUR) } }),
      });
      const json = (await response.json()) as Record<string, any>;
      expect(json.errors).toBeNull();
      expect(json.data.viewer.zones[0]).toMatchObject({ c0: [], c1: [] });
    } finally {
      await bare.close();
    }
  });
});
