import { z } from 'zod';
import type { CloudflareClient as Cloudflare } from './client.ts';
import type { IngressRule, OriginRequest } from '../ingress-model.ts';

/**
 * The configuration of a remotely managed tunnel (`/accounts/:account/cfd_tunnel/:tunnel/configurations`):
 * ingress rules pushed by API, applied by cloudflared without a restart.
 */

export interface TunnelConfiguration {
  version: number;
  /** `cloudflare` when managed through the API; `local` when by a config.yml. */
  source: 'local' | 'cloudflare' | null;
  ingress: IngressRule[];
  originRequest?: OriginRequest;
}

export interface TunnelConfigurationInput {
  ingress: IngressRule[];
  originRequest?: OriginRequest;
}

/**
 * cloudflared's config.yml writes these as Go durations ("30s", "1m30s"); the API takes and gives seconds as numbers.
 * The ingress model keeps the config.yml form, so the adapter converts on the way out and back.
 */
const DURATION_KEYS = ['connectTimeout', 'tlsTimeout', 'tcpKeepAlive', 'keepAliveTimeout'] as const;
const DURATION_UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/** Seconds in a Go duration such as "1m30s" or "500ms"; undefined when it is not one. */
export function durationSeconds(text: string): number | undefined {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text.trim()) return undefined;
  return parts.reduce((total, part) => total + Number(part[1]) * (DURATION_UNIT_MS[part[2] ?? ''] ?? 0), 0) / 1000;
}

function mapDurations(origin: Record<string, unknown>, convert: (value: unknown) => unknown): Record<string, unknown> {
  const out = { ...origin };
  for (const key of DURATION_KEYS) if (key in out) out[key] = convert(out[key]);
  return out;
}

/** The API's form of an originRequest: durations in seconds. */
export function originRequestToApi(origin: OriginRequest): Record<string, unknown> {
  return mapDurations(origin, (value) => (typeof value === 'string' ? (durationSeconds(value) ?? value) : value));
}

/** The config.yml form of an originRequest read from the API: seconds back to durations. */
function originRequestFromApi(origin: Record<string, unknown>): OriginRequest {
  return mapDurations(origin, (value) => (typeof value === 'number' ? `${value}s` : value));
}

/** What we read of the API's answer; anything else in it is kept as it is (rules) or ignored. */
const originShape = z.record(z.unknown());
const ruleShape = z.object({ hostname: z.string().optional(), service: z.string(), originRequest: originShape.optional() }).passthrough();
const answerShape = z
  .object({
    version: z.unknown(),
    source: z.unknown(),
    config: z.object({ ingress: z.unknown(), originRequest: z.unknown() }).partial().nullable().optional(),
  })
  .partial();

function toRules(ingress: unknown): IngressRule[] {
  const rules = z.array(ruleShape).safeParse(ingress);
  if (!rules.success) return [];
  // The API wants `hostname: ""` on a catch-all rule; the ingress model leaves it out.
  return rules.data.map(({ hostname, originRequest, ...rule }) => ({
    ...(hostname ? { hostname } : {}),
    ...rule,
    ...(originRequest ? { originRequest: originRequestFromApi(originRequest) } : {}),
  }));
}

function toConfiguration(raw: unknown): TunnelConfiguration {
  const parsed = answerShape.safeParse(raw ?? {});
  const value = parsed.success ? parsed.data : {};
  const config = value.config ?? {};
  const origin = originShape.safeParse(config.originRequest);
  return {
    version: typeof value.version === 'number' ? value.version : 0,
    source: value.source === 'local' || value.source === 'cloudflare' ? value.source : null,
    ingress: toRules(config.ingress),
    ...(origin.success ? { originRequest: originRequestFromApi(origin.data) } : {}),
  };
}

export async function fetchTunnelConfiguration(client: Cloudflare, accountId: string, tunnelId: string): Promise<TunnelConfiguration> {
  return toConfiguration(await client.zeroTrust.tunnels.cloudflared.configurations.get(tunnelId, { account_id: accountId }));
}

export async function replaceTunnelConfiguration(
  client: Cloudflare,
  accountId: string,
  tunnelId: string,
  input: TunnelConfigurationInput,
): Promise<TunnelConfiguration> {
  const config = {
    ingress: input.ingress.map(({ originRequest, ...rule }) => ({
      ...rule,
      hostname: rule.hostname ?? '',
      ...(originRequest ? { originRequest: originRequestToApi(originRequest) } : {}),
    })),
    ...(input.originRequest ? { originRequest: originRequestToApi(input.originRequest) } : {}),
  };
  const answer = await client.zeroTrust.tunnels.cloudflared.configurations.update(tunnelId, {
    account_id: accountId,
    config,
  });
  return toConfiguration(answer);
}
