import { expect } from 'vitest';
import { TunnelManagerError } from '../../src/errors.ts';
import { createCloudflareProvider, type CloudflareProvider, type CloudflareProviderOptions } from '../../src/cloudflare/cloudflare-provider.ts';
import { startCloudflareEmulator, type CloudflareEmulator, type CloudflareEmulatorOptions } from '../../src/sandbox/cloudflare-emulator/index.ts';

/** The emulator on 127.0.0.1 plus a provider (real SDK) pointed at it, with short backoffs so tests stay fast. */
export interface CloudflareSandbox {
  emulator: CloudflareEmulator;
  provider(overrides?: Partial<CloudflareProviderOptions>): CloudflareProvider;
  close(): Promise<void>;
}

export async function startCloudflareSandbox(options: CloudflareEmulatorOptions = {}): Promise<CloudflareSandbox> {
  const emulator = await startCloudflareEmulator(options);
  return {
    emulator,
    provider: (overrides = {}) =>
      createCloudflareProvider({
        apiBaseUrl: emulator.apiBaseUrl,
        apiToken: emulator.token,
        accountId: emulator.accountId,
        tunnelId: emulator.tunnelId,
        retry: { backoffMs: [10, 20, 40] },
        ...overrides,
      }),
    close: () => emulator.close(),
  };
}

/** The TunnelManagerError a promise rejects with (fails the test when it resolves or throws something else). */
export async function failureOf(promise: Promise<unknown>): Promise<TunnelManagerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TunnelManagerError);
  return error as TunnelManagerError;
}
