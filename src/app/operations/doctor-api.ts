import { join } from 'node:path';
import { z } from 'zod';
import { readTrafficAnswer, trafficQuery } from '../../cloudflare/traffic-analytics.ts';
import { SecretsManager } from '../../secrets/secrets-manager.ts';
import type { Config } from '../config/config.ts';
import { check, messageOf, type DoctorCheck } from './doctor-check.ts';

const NAMES = {
  api: 'Cloudflare API reachable, token active',
  zones: 'zones: read',
  dns: 'DNS records: read',
  tunnel: 'tunnel configuration: read',
  analytics: 'analytics: read (tunnel_get_traffic)',
  clock: 'clock',
} as const;

/** The part of a Cloudflare API answer doctor reads; anything else in it is ignored. */
const ApiBody = z
  .object({
    result: z.unknown().optional(),
    errors: z.array(z.object({ message: z.string().optional() }).passthrough()).optional(),
  })
  .passthrough();
type ApiBody = z.infer<typeof ApiBody>;
const TokenStatus = z.object({ status: z.string().optional() }).passthrough();
const ZoneList = z.array(z.object({ id: z.string().optional() }).passthrough());

interface Answer {
  status: number;
  body: ApiBody | null;
  date: string | null;
}

type Get = (path: string) => Promise<Answer>;

function apiGetter(base: string, token: string): Get {
  return async (path) => {
    const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
    const json: unknown = await response.json().catch(() => null);
    const parsed = ApiBody.safeParse(json);
    return { status: response.status, body: parsed.success ? parsed.data : null, date: response.headers.get('date') };
  };
}

function tokenOf(config: Config, env: NodeJS.ProcessEnv): string | undefined {
  try {
    return new SecretsManager({ env, secretsDir: join(config.dataDir, 'secrets') }).get(config.cloudflare.apiTokenSecret);
  } catch {
    return undefined;
  }
}

function verifyCheck(base: string, verify: Answer): DoctorCheck {
  const status = TokenStatus.safeParse(verify.body?.result);
  const active = verify.status === 200 && status.success && status.data.status === 'active';
  return active
    ? check(NAMES.api, 'ok', `${base}: token active`)
    : check(
        NAMES.api,
        'problem',
        `the token is not active (HTTP ${verify.status}: ${verify.body?.errors?.[0]?.message ?? 'no detail'})`,
        'Create a new API token with Zone:Read, DNS:Edit and Cloudflare Tunnel:Read, and store it where the token check above looks.',
      );
}

async function readCheck(get: Get, name: string, path: string, fix: string): Promise<DoctorCheck> {
  try {
    const answer = await get(path);
    return answer.status === 200 ? check(name, 'ok', `GET ${path}`) : check(name, 'problem', `GET ${path} answered HTTP ${answer.status}`, fix);
  } catch (error) {
    return check(name, 'problem', `GET ${path} failed: ${messageOf(error)}`, fix);
  }
}

/** The id of the default zone, as this token sees it (undefined: not found, or the API did not answer). */
async function defaultZoneId(get: Get, config: Config): Promise<string | undefined> {
  const zones = await get(`/zones?name=${encodeURIComponent(config.tunnel.defaultZone)}`).catch(() => null);
  const list = ZoneList.safeParse(zones?.body?.result);
  return list.success ? list.data[0]?.id : undefined;
}

function dnsCheck(get: Get, config: Config, zoneId: string | undefined): Promise<DoctorCheck> | DoctorCheck {
  if (zoneId) return readCheck(get, NAMES.dns, `/zones/${zoneId}/dns_records?per_page=5`, 'Give the token the permission DNS:Edit on the zones routes are published on.');
  return check(NAMES.dns, 'problem', `the default zone ${config.tunnel.defaultZone} was not found with this token`, 'Set tunnel.defaultZone to a zone of the account, or give the token access to it.');
}

const ANALYTICS_FIX = 'Give the token the permission Analytics:Read (Zone → Analytics → Read) on the zones routes are published on; without it tunnel_get_traffic answers available: false, and nothing else changes.';

/** The query tunnel_get_traffic sends, for the last minute of the default zone: a warning, not a problem, when refused (the tool is optional). */
async function analyticsCheck(base: string, token: string, zone: { id: string | undefined; name: string }): Promise<DoctorCheck> {
  if (!zone.id) return check(NAMES.analytics, 'skipped', 'the default zone was not found (see above)');
  const to = new Date();
  const body = trafficQuery({ zoneId: zone.id, hostnames: [zone.name], chunks: [{ from: new Date(to.getTime() - 60_000), to }], withLimits: true });
  try {
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (response.status !== 200) return check(NAMES.analytics, 'warning', `POST /graphql answered HTTP ${response.status}`, ANALYTICS_FIX);
    const answer = readTrafficAnswer(await response.json(), 1);
    const problem = answer.problems[0];
    if (problem) return check(NAMES.analytics, 'warning', `POST /graphql: ${problem.code}: ${problem.message}`, ANALYTICS_FIX);
    const lookback = answer.limits ? `; the plan keeps ${Math.round(answer.limits.notOlderThanSeconds / 86_400)} days` : '';
    return check(NAMES.analytics, 'ok', `POST /graphql (httpRequestsAdaptiveGroups)${lookback}`);
  } catch (error) {
    return check(NAMES.analytics, 'warning', `POST /graphql failed: ${messageOf(error)}`, ANALYTICS_FIX);
  }
}

function clockCheck(date: string | null, maxSkewMs: number): DoctorCheck {
  const skew = date === null ? null : Date.now() - Date.parse(date);
  if (skew === null || Number.isNaN(skew)) return check(NAMES.clock, 'warning', 'the API sent no Date header to compare with');
  if (Math.abs(skew) > maxSkewMs) {
    return check(NAMES.clock, 'problem', `this machine's clock is ${Math.round(skew / 1000)} s off the API's`, 'Synchronise the clock (systemctl enable --now systemd-timesyncd, or chrony).');
  }
  return check(NAMES.clock, 'ok', `within ${Math.max(1, Math.round(Math.abs(skew) / 1000))} s of the API's`);
}

/** Token verification, the reads the manager needs, and the clock, against the real API. */
export async function checkApi(config: Config, sandbox: boolean, env: NodeJS.ProcessEnv, maxSkewMs: number): Promise<DoctorCheck[]> {
  const names = Object.values(NAMES);
  if (sandbox || config.cloudflare.apiBaseUrl === undefined) return names.map((name) => check(name, 'skipped', 'sandbox mode'));
  const token = tokenOf(config, env);
  if (!token) return names.map((name) => check(name, 'skipped', 'no API token (see above)'));
  const base = config.cloudflare.apiBaseUrl.replace(/\/$/, '');
  const get = apiGetter(base, token);
  let verify: Answer;
  try {
    verify = await get('/user/tokens/verify');
  } catch (error) {
    return [
      check(NAMES.api, 'problem', `${base} did not answer: ${messageOf(error)}`, 'Check the network path to the API (DNS, proxy, firewall) and cloudflare.apiBaseUrl.'),
      ...names.slice(1).map((name) => check(name, 'skipped', 'the API did not answer')),
    ];
  }
  const results = [verifyCheck(base, verify)];
  results.push(await readCheck(get, NAMES.zones, '/zones?per_page=5', 'Give the token the permission Zone:Read on the zones routes are published on.'));
  const zoneId = await defaultZoneId(get, config);
  results.push(await dnsCheck(get, config, zoneId));
  results.push(
    await readCheck(
      get,
      NAMES.tunnel,
      `/accounts/${config.cloudflare.accountId}/cfd_tunnel/${config.tunnel.id}/configurations`,
      'Give the token the permission Cloudflare Tunnel:Read on the account, and check cloudflare.accountId and tunnel.id.',
    ),
  );
  results.push(await analyticsCheck(base, token, { id: zoneId, name: config.tunnel.defaultZone }));
  results.push(clockCheck(verify.date, maxSkewMs));
  return results;
}
