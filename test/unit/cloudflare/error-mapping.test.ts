import { APIConnectionError, APIError } from 'cloudflare/core/error';
import { describe, expect, it } from 'vitest';
import { mapCloudflareError, retryAfterSeconds } from '../../../src/cloudflare/error-mapping.ts';
import { TunnelManagerError } from '../../../src/errors.ts';

function apiError(status: number, errors: unknown[], headers: Record<string, string> = {}): APIError {
  return APIError.generate(status, { success: false, errors, messages: [], result: null }, undefined, new Headers(headers));
}

const context = { operation: 'creating the CNAME app.153.se', zoneId: 'f0cd4fffeebf70a32d4dde6c56806ce7', hostname: 'app.153.se' };

describe('mapCloudflareError', () => {
  it.each([
    ['invalid token (9109)', apiError(403, [{ code: 9109, message: 'Invalid access token' }]), 'CLOUDFLARE_AUTH_FAILED'],
    ['missing permission (10000)', apiError(403, [{ code: 10000, message: 'Authentication error' }]), 'CLOUDFLARE_AUTH_FAILED'],
    ['malformed header (6003 → 6111)', apiError(400, [{ code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6111, message: 'Invalid format' }] }]), 'CLOUDFLARE_AUTH_FAILED'],
    ['401 without a code', apiError(401, []), 'CLOUDFLARE_AUTH_FAILED'],
    ['record exists (81053)', apiError(400, [{ code: 81053, message: 'An A, AAAA, or CNAME record with that host already exists.' }]), 'RECORD_EXISTS'],
    ['identical record (81058)', apiError(400, [{ code: 81058, message: 'An identical record already exists.' }]), 'RECORD_EXISTS'],
    ['unknown zone (7003)', apiError(404, [{ code: 7003, message: 'Could not route to /zones/x/dns_records' }]), 'ZONE_NOT_FOUND'],
    ['429', apiError(429, [{ code: 971, message: 'Please wait' }], { 'retry-after': '7' }), 'CLOUDFLARE_RATE_LIMITED'],
    ['500', apiError(500, [{ code: 10002, message: 'An unknown error has occurred' }]), 'CLOUDFLARE_UNAVAILABLE'],
    ['503 without a body', APIError.generate(503, undefined, 'Service Unavailable', new Headers()), 'CLOUDFLARE_UNAVAILABLE'],
    ['connection dropped', new APIConnectionError({ cause: new Error('other side closed') }), 'CLOUDFLARE_UNAVAILABLE'],
    ['comment too long (9313)', apiError(400, [{ code: 9313, message: 'DNS record comment exceeds the maximum length of 100 characters.' }]), 'CLOUDFLARE_REQUEST_FAILED'],
  ])('%s → %s, with a message and a fix', (_name, error, code) => {
    const mapped = mapCloudflareError(error, context);
    expect(mapped).toBeInstanceOf(TunnelManagerError);
    expect(mapped.code).toBe(code);
    expect(mapped.message).toContain('app.153.se');
    expect(mapped.fix.length).toBeGreaterThan(20);
  });

  it('keeps the Cloudflare codes and HTTP status in details', () => {
    const mapped = mapCloudflareError(apiError(400, [{ code: 81053, message: 'exists' }]), context);
    expect(mapped.details).toMatchObject({ httpStatus: 400, cloudflareErrors: [{ code: 81053, message: 'exists' }], hostname: 'app.153.se' });
  });

  it('tells an invalid token from a missing permission, and says which permissions to grant', () => {
    const invalid = mapCloudflareError(apiError(403, [{ code: 9109, message: 'Invalid access token' }]), context);
    const missing = mapCloudflareError(apiError(403, [{ code: 10000, message: 'Authentication error' }]), context);
    expect(invalid.message).toMatch(/rejected the API token/);
    expect(missing.message).toMatch(/lacks a permission/);
    expect(invalid.fix).toMatch(/DNS · Edit/);
    expect(invalid.fix).toMatch(/tokens\/verify/);
  });

  it('gives the time to wait on 429 from Retry-After, defaulting to 60 s', () => {
    expect(mapCloudflareError(apiError(429, [], { 'retry-after': '7' }), context).details.retryAfterSeconds).toBe(7);
    expect(mapCloudflareError(apiError(429, []), context).details.retryAfterSeconds).toBe(60);
  });

  it('reads Retry-After as seconds, as an HTTP date, and retry-after-ms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterSeconds(new Headers({ 'retry-after': '3' }), now)).toBe(3);
    expect(retryAfterSeconds(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:09 GMT' }), now)).toBe(9);
    expect(retryAfterSeconds(new Headers({ 'retry-after-ms': '1500' }), now)).toBe(1.5);
    expect(retryAfterSeconds(new Headers(), now)).toBeUndefined();
  });

  it('passes our own errors through, including the rate limiter\'s wrapped by the SDK as a connection error', () => {
    const own = new TunnelManagerError({ code: 'CLOUDFLARE_RATE_LIMITED', message: 'budget spent', fix: 'wait', details: { retryAfterSeconds: 3 } });
    expect(mapCloudflareError(own, context)).toBe(own);
    expect(mapCloudflareError(new APIConnectionError({ cause: own }), context)).toBe(own);
  });
});
