/**
 * Every stable error code a caller can see, in one list: the machines put them in their outcomes and events, and
 * src/errors.ts gives them to the one error shape (`code`, `message`, `fix`, `details`; docs/design.md, Principles).
 * It lives here because machines import nothing from src/, while src/ may import machines.
 */
export const ERROR_CODES = [
  // configuration and input
  'CONFIG_INVALID',
  'CONFIG_NOT_FOUND',
  'INPUT_INVALID',
  // store
  'DATABASE_TOO_NEW',
  'MIGRATION_FAILED',
  'DATABASE_NOT_FOUND',
  // identity and ownership
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'PORT_NOT_OWNED',
  'PORT_OUT_OF_RANGE',
  'PORT_TAKEN',
  'PORT_RANGE_EXHAUSTED',
  'HOSTNAME_INVALID',
  'HOSTNAME_TAKEN',
  'ROUTE_NOT_FOUND',
  'ROUTE_NOT_OWNED',
  'ROUTE_BUSY',
  'ROUTE_NOT_ACTIVE',
  'NOTHING_TO_CHANGE',
  'ROUTE_QUOTA_EXCEEDED',
  // cloudflare
  'ZONE_NOT_FOUND',
  'RECORD_EXISTS',
  'RECORD_NOT_OWNED',
  'CLOUDFLARE_AUTH_FAILED',
  'CLOUDFLARE_RATE_LIMITED',
  'CLOUDFLARE_UNAVAILABLE',
  'CLOUDFLARE_REQUEST_FAILED',
  // cloudflared and ingress
  'INGRESS_INVALID',
  'CONFIG_FILE_DRIFT',
  'RELOAD_FAILED',
  'TUNNEL_START_FAILED',
  'TUNNEL_NOT_RUNNING',
  'TUNNEL_STOP_FAILED',
  'CLOUDFLARED_NOT_RUNNABLE',
  'GIT_FAILED',
  'CONFIG_WRITE_FAILED',
  // docker and targets
  'DOCKER_UNAVAILABLE',
  'TARGET_UNREACHABLE',
  'TARGET_AMBIGUOUS',
  'TARGET_NOT_ANSWERING',
  'TARGET_OTHER_PROJECT',
  'CONTAINER_NOT_FOUND',
  // secrets
  'SECRET_MISSING',
  'SECRET_INSECURE',
  // the MCP surface
  'RESOURCE_NOT_FOUND',
  'RATE_LIMITED',
  'CANCELLED',
  'SHUTTING_DOWN',
  // the environment the command runs in (the CLI's own problems, and system errors the code does not expect)
  'ADDRESS_IN_USE',
  'ADDRESS_NOT_AVAILABLE',
  'PERMISSION_DENIED',
  'FILE_NOT_FOUND',
  'SERVICE_UNREACHABLE',
  'CALL_TIMED_OUT',
  // the runtime
  'RUNTIME_UNSUPPORTED',
  // anything else
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether a value is one of our error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN.has(value);
}
