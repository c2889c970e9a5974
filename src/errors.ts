/**
 * The one error shape every caller sees (docs/design.md, Principles):
 * a stable `code`, a plain-words `message`, a `fix` saying what to do next,
 * and `details` with whatever makes the failure concrete (Cloudflare code, networks, keys…).
 *
 * MCP tools turn it into an `isError` result with the same fields in `structuredContent`,
 * the CLI prints it and exits non-zero, the audit row stores `code`.
 */
export type ErrorCode =
  // configuration and input
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'INPUT_INVALID'
  // store
  | 'DATABASE_TOO_NEW'
  | 'MIGRATION_FAILED'
  | 'DATABASE_NOT_FOUND'
  // identity and ownership
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'PORT_NOT_OWNED'
  | 'PORT_OUT_OF_RANGE'
  | 'PORT_TAKEN'
  | 'PORT_RANGE_EXHAUSTED'
  | 'HOSTNAME_INVALID'
  | 'HOSTNAME_TAKEN'
  | 'ROUTE_NOT_FOUND'
  | 'ROUTE_NOT_OWNED'
  | 'ROUTE_BUSY'
  | 'ROUTE_QUOTA_EXCEEDED'
  // cloudflare
  | 'ZONE_NOT_FOUND'
  | 'RECORD_EXISTS'
  | 'RECORD_NOT_OWNED'
  | 'CLOUDFLARE_AUTH_FAILED'
  | 'CLOUDFLARE_RATE_LIMITED'
  | 'CLOUDFLARE_UNAVAILABLE'
  | 'CLOUDFLARE_REQUEST_FAILED'
  // cloudflared and ingress
  | 'INGRESS_INVALID'
  | 'CONFIG_FILE_DRIFT'
  | 'RELOAD_FAILED'
  | 'TUNNEL_START_FAILED'
  | 'TUNNEL_NOT_RUNNING'
  | 'TUNNEL_STOP_FAILED'
  | 'GIT_FAILED'
  | 'CONFIG_WRITE_FAILED'
  // docker and targets
  | 'DOCKER_UNAVAILABLE'
  | 'TARGET_UNREACHABLE'
  | 'TARGET_AMBIGUOUS'
  | 'TARGET_NOT_ANSWERING'
  | 'TARGET_OTHER_PROJECT'
  | 'CONTAINER_NOT_FOUND'
  // secrets
  | 'SECRET_MISSING'
  | 'SECRET_INSECURE'
  // the MCP surface
  | 'RESOURCE_NOT_FOUND'
  | 'RATE_LIMITED'
  | 'CANCELLED'
  // the runtime
  | 'RUNTIME_UNSUPPORTED'
  // anything else
  | 'INTERNAL';

export interface ErrorShape {
  code: ErrorCode;
  message: string;
  fix: string;
  details: Record<string, unknown>;
}

export class TunnelManagerError extends Error implements ErrorShape {
  readonly code: ErrorCode;
  readonly fix: string;
  readonly details: Record<string, unknown>;

  constructor(shape: { code: ErrorCode; message: string; fix: string; details?: Record<string, unknown>; cause?: unknown }) {
    super(shape.message, shape.cause === undefined ? undefined : { cause: shape.cause });
    this.name = 'TunnelManagerError';
    this.code = shape.code;
    this.fix = shape.fix;
    this.details = shape.details ?? {};
  }

  toJSON(): ErrorShape {
    return { code: this.code, message: this.message, fix: this.fix, details: this.details };
  }
}

/** Any thrown value as the one shape; unknown failures become INTERNAL with a fix that says where to look. */
export function toErrorShape(error: unknown): ErrorShape {
  if (error instanceof TunnelManagerError) return error.toJSON();
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: 'INTERNAL',
    message: `Unexpected failure: ${message}`,
    fix: 'This is a bug in tunnel-manager. Check the service log (stderr, JSON) around this time and report it with the log lines.',
    details: {},
  };
}

/** Render for a terminal: the CLI prints this and exits non-zero. */
export function formatErrorForTerminal(shape: ErrorShape): string {
  const lines = [`error ${shape.code}: ${shape.message}`, `fix: ${shape.fix}`];
  if (Object.keys(shape.details).length > 0) lines.push(`details: ${JSON.stringify(shape.details)}`);
  return lines.join('\n');
}
