/** The Cloudflare adapter: what the composition root wires in. */
export { createCloudflareProvider } from './cloudflare-provider.ts';
export type { CloudflareProvider, CloudflareProviderOptions } from './cloudflare-provider.ts';
export type { EnsureCnameInput, EnsureCnameResult, DeleteCnameInput, DeleteCnameResult, OwnershipRegistry } from './ownership-registry.ts';
export type { DnsProvider } from './dns-provider.ts';
export { ZoneDirectory } from './zones.ts';
export type { ZoneDirectoryOptions, ZoneRefreshReport } from './zones.ts';
export { findTunnelRecords } from './adoption.ts';
export type { TunnelRecordFound, TunnelRecordScan } from './adoption.ts';
export { RateLimiter } from './rate-limiter.ts';
export type { RateLimiterOptions } from './rate-limiter.ts';
export type { RetryPolicyOptions } from './retry-policy.ts';
export { CLOUDFLARE_API_BASE_URL } from './client.ts';
export { formatOwnershipComment, parseOwnershipComment, classifyRecord } from './ownership-marker.ts';
export { mapCloudflareError } from './error-mapping.ts';
export type { CloudflareZone, DnsRecord } from './cloudflare-types.ts';
export { tunnelTargetFor } from './cloudflare-types.ts';
export type { TunnelConfiguration, TunnelConfigurationInput } from './tunnel-configuration.ts';
