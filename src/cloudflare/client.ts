import Cloudflare from 'cloudflare';
import { RateLimiter } from './rate-limiter.ts';

/**
 * Builds the official SDK client: explicit token and base URL (never the SDK's environment defaults),
 * SDK retries off (see retry-policy.ts), and every HTTP request, pages included, passing through the
 * one shared rate limiter.
 */

export const CLOUDFLARE_API_BASE_URL = 'https://api.cloudflare.com/client/v4';

export interface CloudflareClientOptions {
  /** Default https://api.cloudflare.com/client/v4; the sandbox passes its emulator's URL. */
  apiBaseUrl?: string;
  apiToken: string;
  rateLimiter: RateLimiter;
  /** Per request; default 30 s. */
  timeoutMs?: number;
}

export function createCloudflareClient(options: CloudflareClientOptions): Cloudflare {
  const limiter = options.rateLimiter;
  return new Cloudflare({
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
      return fetch(input, init);
    },
  });
}
