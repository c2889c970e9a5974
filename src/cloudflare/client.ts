import { BaseRecords } from 'cloudflare/resources/dns/records';
import { BaseZones } from 'cloudflare/resources/zones/zones';
import { BaseConfigurations } from 'cloudflare/resources/zero-trust/tunnels/cloudflared/configurations';
import { createClient } from 'cloudflare/tree-shakable';
import { type RateLimiter } from './rate-limiter.ts';

/**
 * Builds the official SDK client with only the endpoints we call (zones, DNS records, tunnel configurations),
 * through the SDK's tree-shakable entry point: the full client loads every resource of the API (~1,900 modules,
 * about 40 MB resident) while these three cost about 1.5 MB once bundled (ADR 0004). Explicit token and base URL
 * (never the SDK's environment defaults), SDK retries off (see retry-policy.ts), and every HTTP request, pages
 * included, passing through the one shared rate limiter.
 */

export const CLOUDFLARE_API_BASE_URL = 'https://api.cloudflare.com/client/v4';

/** The resources our provider uses; adding a call to another endpoint means adding its resource here. */
const RESOURCES = [BaseZones, BaseRecords, BaseConfigurations] as const;

export interface CloudflareClientOptions {
  /** Default https://api.cloudflare.com/client/v4; the sandbox passes its emulator's URL. */
  apiBaseUrl?: string;
  apiToken: string;
  rateLimiter: RateLimiter;
  /** Per request; default 30 s. */
  timeoutMs?: number;
  /** Hears how each HTTP request ended: its status, or `null` when no answer came (metrics). */
  onResponse?: (method: string, status: number | null, durationMs: number) => void;
}

export function createCloudflareClient(options: CloudflareClientOptions) {
  const limiter = options.rateLimiter;
  return createClient({
    resources: RESOURCES,
    apiToken: options.apiToken,
    apiKey: null,
    apiEmail: null,
    userServiceKey: null,
    baseURL: options.apiBaseUrl ?? CLOUDFLARE_API_BASE_URL,
    maxRetries: 0,
    timeout: options.timeoutMs ?? 30_000,
    logLevel: 'off',
    fetch: async (input, init) => {
      await limiter.acquire();
      const method = init?.method ?? 'GET';
      const started = performance.now();
      try {
        const response = await fetch(input, init);
        options.onResponse?.(method, response.status, performance.now() - started);
        return response;
      } catch (error) {
        options.onResponse?.(method, null, performance.now() - started);
        throw error;
      }
    },
  });
}

/** The typed client the provider talks to: zones, DNS records and tunnel configurations, nothing else. */
export type CloudflareClient = ReturnType<typeof createCloudflareClient>;
