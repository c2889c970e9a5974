import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/cloudflare/rate-limiter.ts';
import { FIXTURE_ZONES } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { failureOf, startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

const MAIN = FIXTURE_ZONES.main.id;

let sandbox: CloudflareSandbox;
beforeEach(async () => {
  sandbox = await startCloudflareSandbox();
});
afterEach(async () => {
  await sandbox.close();
});

describe('transient failures through the real SDK', () => {
  it('429 with Retry-After: waits as asked, then succeeds', async () => {
    sandbox.emulator.setFaults([{ route: 'GET /zones', status: 429, retryAfterSeconds: 1, times: 1 }]);
    const slept: number[] = [];
    const provider = sandbox.provider({
      retry: { sleep: (ms) => new Promise((resolve) => setTimeout(() => resolve(void slept.push(ms)), ms)) },
    });
    const zones = await provider.listZones();
    expect(zones.map((z) => z.name)).toContain('153.se');
    expect(slept).toEqual([1_000]);
    expect(sandbox.emulator.requests().map((r) => r.status)).toEqual([429, 200]);
  });

  it('a Retry-After longer than we wait for goes to the caller as CLOUDFLARE_RATE_LIMITED with the time to wait', async () => {
    sandbox.emulator.setFaults([{ route: 'GET /zones', status: 429, retryAfterSeconds: 120 }]);
    const error = await failureOf(sandbox.provider().listZones());
    expect(error.code).toBe('CLOUDFLARE_RATE_LIMITED');
    expect(error.details.retryAfterSeconds).toBe(120);
    expect(error.fix).toContain('120 seconds');
    expect(sandbox.emulator.requests()).toHaveLength(1);
  });

  it('a 500 is retried and the operation succeeds', async () => {
    sandbox.emulator.setFaults([{ route: 'POST /zones/:zone/dns_records', status: 500, times: 1 }]);
    const { created } = await sandbox.provider().ensureCname({ zoneId: MAIN, hostname: 'retry.153.se', owner: 'consilio' });
    expect(created).toBe(true);
    expect(sandbox.emulator.state().records.filter((r) => r.name === 'retry.153.se')).toHaveLength(1);
  });

  it('a Cloudflare that keeps failing ends in CLOUDFLARE_UNAVAILABLE after the attempts run out', async () => {
    sandbox.emulator.setFaults([{ route: '*', status: 503 }]);
    const error = await failureOf(sandbox.provider({ retry: { maxAttempts: 3, backoffMs: [5] } }).listZones());
    expect(error.code).toBe('CLOUDFLARE_UNAVAILABLE');
    expect(error.message).toContain('HTTP 503');
    expect(sandbox.emulator.requests()).toHaveLength(3);
  });

  it('an unreachable API is CLOUDFLARE_UNAVAILABLE', async () => {
    const url = sandbox.emulator.apiBaseUrl;
    await sandbox.close();
    const error = await failureOf(sandbox.provider({ apiBaseUrl: url, retry: { maxAttempts: 1 } }).listZones());
    expect(error.code).toBe('CLOUDFLARE_UNAVAILABLE');
    sandbox = await startCloudflareSandbox();
  });

  it('every request, pages included, goes through the shared rate limiter', async () => {
    const limiter = new RateLimiter({ limit: 3, windowMs: 300_000, maxWaitMs: 0 });
    const provider = sandbox.provider({ rateLimiter: limiter, retry: { maxAttempts: 1 } });
    await provider.listZones();
    await provider.findRecords(MAIN, 'chat.153.se');
    await provider.findRecords(MAIN, 'code.153.se');
    const error = await failureOf(provider.findRecords(MAIN, 'www.153.se'));
    expect(error.code).toBe('CLOUDFLARE_RATE_LIMITED');
    expect(error.details.source).toBe('client');
    expect(sandbox.emulator.requests()).toHaveLength(3);
  });
});

describe('tokens through the real SDK', () => {
  it('an invalid token is CLOUDFLARE_AUTH_FAILED with the permissions to grant', async () => {
    const error = await failureOf(sandbox.provider({ apiToken: 'this-token-does-not-exist' }).listZones());
    expect(error.code).toBe('CLOUDFLARE_AUTH_FAILED');
    expect(error.details.cloudflareErrors).toEqual([{ code: 9109, message: 'Invalid access token' }]);
    expect(error.fix).toMatch(/DNS · Edit/);
    expect(JSON.stringify(error.toJSON())).not.toContain('this-token-does-not-exist');
  });

  it('a token without DNS edit permission is CLOUDFLARE_AUTH_FAILED saying a permission is missing', async () => {
    await sandbox.close();
    const readOnly = 'read-only-token-1111111111111111111111111';
    sandbox = await startCloudflareSandbox({ extraTokens: [{ token: readOnly, scopes: ['zone:read', 'dns:read'] }] });
    const error = await failureOf(sandbox.provider({ apiToken: readOnly }).ensureCname({ zoneId: MAIN, hostname: 'ro.153.se', owner: 'consilio' }));
    expect(error.code).toBe('CLOUDFLARE_AUTH_FAILED');
    expect(error.message).toMatch(/lacks a permission needed for creating the CNAME ro\.153\.se/);
  });
});
