import { createCloudflareClient } from './client.ts';
import { tunnelTargetFor, type CloudflareZone } from './cloudflare-types.ts';
import { createDnsProvider } from './dns-provider.ts';
import { mapCloudflareError, type CloudflareCallContext } from './error-mapping.ts';
import { createOwnershipRegistry, type OwnershipRegistry } from './ownership-registry.ts';
import { RateLimiter } from './rate-limiter.ts';
import { withRetries, type RetryPolicyOptions } from './retry-policy.ts';
import { fetchTunnelConfiguration, replaceTunnelConfiguration, type TunnelConfiguration, type TunnelConfigurationInput } from './tunnel-configuration.ts';
import { fetchZoneTraffic, type TrafficQueryInput, type ZoneTrafficAnswer } from './traffic-analytics.ts';
import { fetchAccountZones } from './zones.ts';

/**
 * Tunnel Manager's one door to Cloudflare, as the composition root wires it: the DNS records through the
 * ownership registry (ownership-registry.ts) around the plain provider (dns-provider.ts), which carries out the
 * plans of record-plan.ts; the account's zones; the tunnel's remote configuration. One SDK client, every request
 * through the shared rate limiter, every failure mapped (error-mapping.ts) and retried when transient
 * (retry-policy.ts). The name `CloudflareProvider` is the callers' (kept so this change stays within the adapter);
 * the provider proper is `DnsProvider`.
 */

export type { DeleteCnameInput, DeleteCnameResult, EnsureCnameInput, EnsureCnameResult } from './ownership-registry.ts';
export { recordExistsError } from './record-errors.ts';

export interface CloudflareProviderOptions {
  /** Default https://api.cloudflare.com/client/v4. */
  apiBaseUrl?: string;
  apiToken: string;
  accountId: string;
  tunnelId: string;
  /** Shared by every client of the process; default a new one (1,000 requests per 5 minutes). */
  rateLimiter?: RateLimiter;
  retry?: RetryPolicyOptions;
  /** per_page for lists: zones 5–50 (default 50), records (default 100). */
  pageSize?: { zones?: number; records?: number };
  timeoutMs?: number;
  /** Hears how each HTTP request to the API ended (metrics). */
  onResponse?: (method: string, status: number | null, durationMs: number) => void;
}

export interface CloudflareProvider extends OwnershipRegistry {
  readonly accountId: string;
  readonly tunnelId: string;
  listZones(): Promise<CloudflareZone[]>;
  getTunnelConfiguration(): Promise<TunnelConfiguration>;
  putTunnelConfiguration(config: TunnelConfigurationInput): Promise<TunnelConfiguration>;
  /** One zone's traffic per hostname from the GraphQL Analytics API (traffic-analytics.ts); GraphQL errors are in the answer. */
  zoneTraffic(input: TrafficQueryInput): Promise<ZoneTrafficAnswer>;
}

export function createCloudflareProvider(options: CloudflareProviderOptions): CloudflareProvider {
  const client = createCloudflareClient({
    apiToken: options.apiToken,
    rateLimiter: options.rateLimiter ?? new RateLimiter(),
    ...(options.apiBaseUrl !== undefined ? { apiBaseUrl: options.apiBaseUrl } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.onResponse ? { onResponse: options.onResponse } : {}),
  });
  const dns = createDnsProvider(client, { recordsPerPage: options.pageSize?.records ?? 100 });
  const registry = createOwnershipRegistry(dns, { tunnelTarget: tunnelTargetFor(options.tunnelId), ...(options.retry ? { retry: options.retry } : {}) });

  /** One API call, mapped, re-run whole on a transient failure. */
  const retried = <T>(context: CloudflareCallContext, work: () => Promise<T>): Promise<T> =>
    withRetries(async () => {
      try {
        return await work();
      } catch (error) {
        throw mapCloudflareError(error, context);
      }
    }, options.retry);

  return {
    ...registry,
    accountId: options.accountId,
    tunnelId: options.tunnelId,
    listZones: () => retried({ operation: 'listing the zones of the account' }, () => fetchAccountZones(client, options.accountId, options.pageSize?.zones ?? 50)),
    getTunnelConfiguration: () =>
      retried({ operation: `reading the configuration of tunnel ${options.tunnelId}` }, () => fetchTunnelConfiguration(client, options.accountId, options.tunnelId)),
    putTunnelConfiguration: (config) =>
      retried({ operation: `replacing the configuration of tunnel ${options.tunnelId}` }, () =>
        replaceTunnelConfiguration(client, options.accountId, options.tunnelId, config),
      ),
    zoneTraffic: (input) => retried({ operation: `reading the traffic of zone ${input.zoneId}` }, () => fetchZoneTraffic(client, input)),
  };
}
