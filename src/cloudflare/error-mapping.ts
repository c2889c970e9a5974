import { APIConnectionError, APIError } from 'cloudflare/core/error';
import { TunnelManagerError } from '../errors.ts';

/**
 * Turns whatever the SDK throws (HTTP status + Cloudflare error codes, or a connection failure) into
 * the one error shape, with a message and a fix a project supervisor can act on.
 */

export interface CloudflareCallContext {
  /** What we were doing, in words: "listing the zones of the account", "creating the CNAME app.153.se". */
  operation: string;
  zoneId?: string;
  hostname?: string;
}

export interface CloudflareErrorItem {
  code: number;
  message: string;
}

/** Token problems: 9109 invalid token, 10000 authentication error (missing permission), 10001, 6003/6111 malformed header… */
const AUTH_CODES = new Set([1000, 6003, 6100, 6101, 6102, 6103, 6111, 9103, 9106, 9107, 9109, 10000, 10001]);
/** A record of that name already exists (CNAME conflicts, identical record…). */
const RECORD_EXISTS_CODES = new Set([81053, 81054, 81055, 81056, 81057, 81058]);
/** Unknown or invalid zone identifier. */
const ZONE_CODES = new Set([1001, 7003]);
const RATE_LIMIT_CODES = new Set([971, 10429]);
/** Seconds to wait when Cloudflare rate-limits without saying for how long: its window is 5 minutes. */
export const DEFAULT_RETRY_AFTER_SECONDS = 60;

const TOKEN_FIX =
  'Create an API token at https://dash.cloudflare.com/profile/api-tokens with the permissions Zone · Zone · Read and Zone · DNS · Edit ' +
  '(plus Account · Cloudflare Tunnel · Edit for a remotely managed tunnel) on the zones of this account, store it where the SecretsManager ' +
  'finds it (env TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN, or the file <secretsDir>/cloudflare_api_token with mode 0600), and restart. ' +
  'Check a token with: curl -s -H "Authorization: Bearer $TOKEN" https://api.cloudflare.com/client/v4/user/tokens/verify';

/** Fixes for request errors whose cause we know. */
const REQUEST_FIXES: Record<number, string> = {
  1003: 'Cloudflare does not know this tunnel in this account: check tunnel.id and cloudflare.accountId in the configuration against `cloudflared tunnel list`.',
  9005: 'The hostname must be inside the zone it is created in: request it as <name>.<zone> for a zone listed by the zones tool.',
  9007: 'The CNAME target must be a hostname; this is a bug in tunnel-manager if it happens for a tunnel route. Report it with details.',
  9313: 'The record comment is over the zone plan limit (100 characters on Free); use a shorter project name.',
  9314: 'Tags need a paid plan on this zone; this is a bug in tunnel-manager if it happens. Report it with details.',
  81044: 'The record was deleted meanwhile (by hand or by another process); refresh and retry the request.',
};

/** All codes in the answer, including nested `error_chain` entries. */
export function cloudflareErrorItems(error: APIError): CloudflareErrorItem[] {
  const items: CloudflareErrorItem[] = [];
  const visit = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const item of list as { code?: unknown; message?: unknown; error_chain?: unknown }[]) {
      if (typeof item?.code === 'number') items.push({ code: item.code, message: String(item.message ?? '') });
      visit(item?.error_chain);
    }
  };
  visit(error.errors);
  return items;
}

/** Retry-After as seconds: a number of seconds or an HTTP date; `retry-after-ms` too. */
export function retryAfterSeconds(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms !== null && ms !== undefined && Number.isFinite(Number(ms))) return Math.max(0, Number(ms) / 1000);
  const raw = headers?.get('retry-after');
  if (raw === null || raw === undefined || raw.trim() === '') return undefined;
  if (Number.isFinite(Number(raw))) return Math.max(0, Number(raw));
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

function describe(items: CloudflareErrorItem[]): string {
  return items.length === 0 ? 'no Cloudflare error code' : items.map((item) => `${item.code} ${item.message}`).join('; ');
}

export function mapCloudflareError(error: unknown, context: CloudflareCallContext): TunnelManagerError {
  if (error instanceof TunnelManagerError) return error;
  // The client-side rate limiter throws from inside fetch; the SDK wraps it as a connection error.
  if (error instanceof APIConnectionError && error.cause instanceof TunnelManagerError) return error.cause;

  const base = { operation: context.operation, ...(context.zoneId ? { zoneId: context.zoneId } : {}), ...(context.hostname ? { hostname: context.hostname } : {}) };

  if (error instanceof APIConnectionError || !(error instanceof APIError) || error.status === undefined) {
    const cause = error instanceof Error ? (error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message) : String(error);
    return new TunnelManagerError({
      code: 'CLOUDFLARE_UNAVAILABLE',
      message: `Could not reach the Cloudflare API while ${context.operation}: ${cause}.`,
      fix: 'Nothing was changed by this call as far as we know. Retry in a minute; if it persists, check the VM\'s network and DNS (curl -sI https://api.cloudflare.com/client/v4) and https://www.cloudflarestatus.com.',
      details: { ...base, cause },
      cause: error,
    });
  }

  const status = error.status;
  const items = cloudflareErrorItems(error);
  const codes = new Set(items.map((item) => item.code));
  const details = { ...base, httpStatus: status, cloudflareErrors: items };
  const has = (set: Set<number>) => [...codes].some((code) => set.has(code));

  if (status === 429 || has(RATE_LIMIT_CODES)) {
    const wait = retryAfterSeconds(error.headers) ?? DEFAULT_RETRY_AFTER_SECONDS;
    return new TunnelManagerError({
      code: 'CLOUDFLARE_RATE_LIMITED',
      message: `Cloudflare rate-limited the API token while ${context.operation}; it asks to wait ${wait} s.`,
      fix: `Retry the same call after ${wait} seconds. Cloudflare allows 1,200 requests per 5 minutes per token; avoid loops of requests.`,
      details: { ...details, retryAfterSeconds: wait, source: 'cloudflare' },
      cause: error,
    });
  }
  if (status === 401 || has(AUTH_CODES) || (status === 403 && !has(RECORD_EXISTS_CODES))) {
    const missingPermission = codes.has(10000) && !codes.has(9109);
    return new TunnelManagerError({
      code: 'CLOUDFLARE_AUTH_FAILED',
      message: missingPermission
        ? `The Cloudflare API token lacks a permission needed for ${context.operation} (${describe(items)}).`
        : `Cloudflare rejected the API token while ${context.operation} (${describe(items)}).`,
      fix: missingPermission ? `Give the token the missing permission, or replace it. ${TOKEN_FIX}` : TOKEN_FIX,
      details,
      cause: error,
    });
  }
  if (status >= 500) {
    return new TunnelManagerError({
      code: 'CLOUDFLARE_UNAVAILABLE',
      message: `The Cloudflare API failed with HTTP ${status} while ${context.operation} (${describe(items)}).`,
      fix: 'This is on Cloudflare\'s side. Retry in a minute; https://www.cloudflarestatus.com shows ongoing incidents.',
      details,
      cause: error,
    });
  }
  if (has(RECORD_EXISTS_CODES)) {
    return new TunnelManagerError({
      code: 'RECORD_EXISTS',
      message: `Cloudflare already has a record named ${context.hostname ?? 'that'} that conflicts (${describe(items)}).`,
      fix: 'Pick another hostname, or ask the meta-supervisor to look at the existing record in the Cloudflare dashboard; Tunnel Manager never overwrites a record it does not own.',
      details,
      cause: error,
    });
  }
  if (has(ZONE_CODES) || (status === 404 && context.zoneId !== undefined && !codes.has(81044))) {
    return new TunnelManagerError({
      code: 'ZONE_NOT_FOUND',
      message: `Cloudflare does not know the zone ${context.zoneId ?? ''} (or the token cannot see it) while ${context.operation} (${describe(items)}).`.replace('zone  (', 'zone ('),
      fix: 'Refresh the zones (the zones list tool, or restart) and use a zone listed there; if the zone is missing, add it to the account or give the token access to it.',
      details,
      cause: error,
    });
  }
  const known = [...codes].map((code) => REQUEST_FIXES[code]).find((fix) => fix !== undefined);
  return new TunnelManagerError({
    code: 'CLOUDFLARE_REQUEST_FAILED',
    message: `Cloudflare refused ${context.operation} with HTTP ${status} (${describe(items)}).`,
    fix: known ?? 'Read details.cloudflareErrors; if the request looks right, report it with those codes (it may be a bug in tunnel-manager).',
    details,
    cause: error,
  });
}
