import type { CloudflareClient as Cloudflare } from './client.ts';
import type { IngressRule, OriginRequest } from '../cloudflared/ingress-model.ts';

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

function toConfiguration(raw: unknown): TunnelConfiguration {
  const value = (raw ?? {}) as { version?: unknown; source?: unknown; config?: { ingress?: unknown; originRequest?: unknown } | null };
  const config = value.config ?? {};
  return {
    version: typeof value.version === 'number' ? value.version : 0,
    source: value.source === 'local' || value.source === 'cloudflare' ? value.source : null,
    // The API wants `hostname: ""` on a catch-all rule; the ingress model leaves it out.
    ingress: Array.isArray(config.ingress)
      ? (config.ingress as IngressRule[]).map(({ hostname, ...rule }) => (hostname ? { hostname, ...rule } : rule))
      : [],
    ...(config.originRequest && typeof config.originRequest === 'object' ? { originRequest: config.originRequest as OriginRequest } : {}),
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
    ingress: input.ingress.map((rule) => ({ ...rule, hostname: rule.hostname ?? '' })),
    ...(input.originRequest ? { originRequest: input.originRequest } : {}),
  };
  const answer = await client.zeroTrust.tunnels.cloudflared.configurations.update(tunnelId, {
    account_id: accountId,
    config: config as NonNullable<Parameters<Cloudflare['zeroTrust']['tunnels']['cloudflared']['configurations']['update']>[1]['config']>,
  });
  return toConfiguration(answer);
}
