import { z } from 'zod';
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

const errorItem = z.object({ code: z.number(), message: z.unknown().optional(), error_chain: z.unknown().optional() });

/** All codes in the answer, including nested `error_chain` entries. */
export function cloudflareErrorItems(error: APIError): CloudflareErrorItem[] {
  const items: CloudflareErrorItem[] = [];
  const visit = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const entry of list) {
      const item = errorItem.safeParse(entry);
      if (!item.success) continue;
      items.push({ code: item.data.code, message: String(item.data.message ?? '') });
      visit(item.data.error_chain);
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

/** What every rule below looks at: the answer, its codes, and the details every mapped error carries. */
interface Answer {
  error: APIError;
  status: number;
  items: CloudflareErrorItem[];
  codes: Set<number>;
  details: Record<string, unknown>;
  context: CloudflareCallContext;
}

const has = (answer: Answer, set: Set<number>) => [...answer.codes].some((code) => set.has(code));

function connectionFailure(error: unknown, context: CloudflareCallContext, base: Record<string, unknown>): TunnelManagerError {
  const cause = error instanceof Error ? (error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message) : String(error);
  return new TunnelManagerError({
    code: 'CLOUDFLARE_UNAVAILABLE',
    message: `Could not reach the Cloudflare API while ${context.operation}: ${cause}.`,
    fix: 'Nothing was changed by this call as far as we know. Retry in a minute; if it persists, check the VM\'s network and DNS (curl -sI https://api.cloudflare.com/client/v4) and https://www.cloudflarestatus.com.',
    details: { ...base, cause },
    cause: error,
  });
}

function rateLimited(answer: Answer): TunnelManagerError | null {
  if (answer.status !== 429 && !has(answer, RATE_LIMIT_CODES)) return null;
  const wait = retryAfterSeconds(answer.error.headers) ?? DEFAULT_RETRY_AFTER_SECONDS;
  return new TunnelManagerError({
    code: 'CLOUDFLARE_RATE_LIMITED',
    message: `Cloudflare rate-limited the API token while ${answer.context.operation}; it asks to wait ${wait} s.`,
    fix: `Retry the same call after ${wait} seconds. Cloudflare allows 1,200 requests per 5 minutes per token; avoid loops of requests.`,
    details: { ...answer.details, retryAfterSeconds: wait, source: 'cloudflare' },
    cause: answer.error,
  });
}

function authFailed(answer: Answer): TunnelManagerError | null {
  const { status, codes } = answer;
  if (!(status === 401 || has(answer, AUTH_CODES) || (status === 403 && !has(answer, RECORD_EXISTS_CODES)))) return null;
  const missingPermission = codes.has(10000) && !codes.has(9109);
  return new TunnelManagerError({
    code: 'CLOUDFLARE_AUTH_FAILED',
    message: missingPermission
      ? `The Cloudflare API token lacks a permission needed for ${answer.context.operation} (${describe(answer.items)}).`
      : `Cloudflare rejected the API token while ${answer.context.operation} (${describe(answer.items)}).`,
    fix: missingPermission ? `Give the token the missing permission, or replace it. ${TOKEN_FIX}` : TOKEN_FIX,
    details: answer.details,
    cause: answer.error,
  });
}

function serverFailed(answer: Answer): TunnelManagerError | null {
  if (answer.status < 500) return null;
  return new TunnelManagerError({
    code: 'CLOUDFLARE_UNAVAILABLE',
    message: `The Cloudflare API failed with HTTP ${answer.status} while ${answer.context.operation} (${describe(answer.items)}).`,
    fix: 'This is on Cloudflare\'s side. Retry in a minute; https://www.cloudflarestatus.com shows ongoing incidents.',
    details: answer.details,
    cause: answer.error,
  });
}

function recordExists(answer: Answer): TunnelManagerError | null {
  if (!has(answer, RECORD_EXISTS_CODES)) return null;
  return new TunnelManagerError({
    code: 'RECORD_EXISTS',
    message: `Cloudflare already has a record named ${answer.context.hostname ?? 'that'} that conflicts (${describe(answer.items)}).`,
    fix: 'Pick another hostname, or ask the meta-supervisor to look at the existing record in the Cloudflare dashboard; Tunnel Manager never overwrites a record it does not own.',
    details: answer.details,
    cause: answer.error,
  });
}

function zoneNotFound(answer: Answer): TunnelManagerError | null {
  const { context } = answer;
  if (!(has(answer, ZONE_CODES) || (answer.status === 404 && context.zoneId !== undefined && !answer.codes.has(81044)))) return null;
  return new TunnelManagerError({
    code: 'ZONE_NOT_FOUND',
    message: `Cloudflare does not know the zone ${context.zoneId ?? ''} (or the token cannot see it) while ${context.operation} (${describe(answer.items)}).`.replace('zone  (', 'zone ('),
    fix: 'Refresh the zones (the zones list tool, or restart) and use a zone listed there; if the zone is missing, add it to the account or give the token access to it.',
    details: answer.details,
    cause: answer.error,
  });
}

function requestFailed(answer: Answer): TunnelManagerError {
  const known = [...answer.codes].map((code) => REQUEST_FIXES[code]).find((fix) => fix !== undefined);
  return new TunnelManagerError({
    code: 'CLOUDFLARE_REQUEST_FAILED',
    message: `Cloudflare refused ${answer.context.operation} with HTTP ${answer.status} (${describe(answer.items)}).`,
    fix: known ?? 'Read details.cloudflareErrors; if the request looks right, report it with those codes (it may be a bug in tunnel-manager).',
    details: answer.details,
    cause: answer.error,
  });
}

/** The rules, most specific first: the first that recognises the answer maps it. */
const RULES = [rateLimited, authFailed, serverFailed, recordExists, zoneNotFound];

export function mapCloudflareError(error: unknown, context: CloudflareCallContext): TunnelManagerError {
  if (error instanceof TunnelManagerError) return error;
  // The client-side rate limiter throws from inside fetch; the SDK wraps it as a connection error.
  if (error instanceof APIConnectionError && error.cause instanceof TunnelManagerError) return error.cause;
  const base = { operation: context.operation, ...(context.zoneId ? { zoneId: context.zoneId } : {}), ...(context.hostname ? { hostname: context.hostname } : {}) };
  if (error instanceof APIConnectionError || !(error instanceof APIError) || error.status === undefined) return connectionFailure(error, context, base);
  const items = cloudflareErrorItems(error);
  const answer: Answer = { error, status: error.status, items, codes: new Set(items.map((item) => item.code)), details: { ...base, httpStatus: error.status, cloudflareErrors: items }, context };
  for (const rule of RULES) {
    const mapped = rule(answer);
    if (mapped !== null) return mapped;
  }
  return requestFailed(answer);
}
