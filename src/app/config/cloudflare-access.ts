import { join } from 'node:path';
import { createCloudflareProvider, type CloudflareProvider, type CloudflareProviderOptions } from '../../cloudflare/cloudflare-provider.ts';
import { RateLimiter } from '../../cloudflare/rate-limiter.ts';
import { SecretsManager } from '../../secrets/secrets-manager.ts';
import type { Config } from './config.ts';

/**
 * The Cloudflare provider a configuration names: the sandbox's emulator when one is given, else the configured API
 * with the token the SecretsManager finds (environment, `<dataDir>/secrets/`, systemd credentials). One place for
 * it, so `serve` and the offline commands (`recover`) talk to Cloudflare the same way.
 */
export function cloudflareProviderFor(
  config: Config,
  options: { sandbox?: { apiBaseUrl: string; apiToken: string } | null; onResponse?: CloudflareProviderOptions['onResponse'] } = {},
): CloudflareProvider {
  const sandbox = options.sandbox ?? null;
  const apiToken = sandbox ? sandbox.apiToken : new SecretsManager({ secretsDir: join(config.dataDir, 'secrets') }).require(config.cloudflare.apiTokenSecret);
  return createCloudflareProvider({
    ...(sandbox ? { apiBaseUrl: sandbox.apiBaseUrl } : config.cloudflare.apiBaseUrl ? { apiBaseUrl: config.cloudflare.apiBaseUrl } : {}),
    apiToken,
    accountId: config.cloudflare.accountId,
    tunnelId: config.tunnel.id,
    rateLimiter: new RateLimiter({ limit: config.cloudflare.requestsPerFiveMinutes, projectShare: config.limits.cloudflareSharePercent / 100 }),
    ...(options.onResponse ? { onResponse: options.onResponse } : {}),
  });
}
