/**
 * The one error shape every caller sees (docs/design.md, Principles):
 * a stable `code`, a plain-words `message`, a `fix` saying what to do next,
 * and `details` with whatever makes the failure concrete (Cloudflare code, networks, keys…).
 *
 * MCP tools turn it into an `isError` result with the same fields in `structuredContent`,
 * the CLI prints it and exits non-zero, the audit row stores `code`.
 */
import type { ErrorCode } from '../machines/error-codes.ts';

/** The codes are listed once, in machines/error-codes.ts, so the machines' outcomes use the same ones. */
export type { ErrorCode } from '../machines/error-codes.ts';
export { ERROR_CODES, isErrorCode } from '../machines/error-codes.ts';

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

/** A Node system error (`EACCES`, `EADDRINUSE`…) with what Node says it was doing. */
interface SystemError extends Error {
  code: string;
  syscall?: string;
  path?: string;
  address?: string;
  port?: number;
}

function isSystemError(error: unknown): error is SystemError {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' && /^E[A-Z]+$/.test(error.code);
}

/** Where a system error happened, in words: the address (`host:port`) and the path, when Node says. */
interface Place {
  address: string | null;
  path: string | null;
}

function addressInUse(error: SystemError, { address }: Place): ErrorShape {
  return {
    code: 'ADDRESS_IN_USE',
    message: `Another program already listens on ${address ?? 'the address'}.`,
    fix: `Find it with \`ss -ltnp 'sport = :${error.port ?? 'PORT'}'\` and stop it, or configure another address (port 0 picks a free one).`,
    details: { address },
  };
}

function addressNotAvailable(_error: SystemError, { address }: Place): ErrorShape {
  return {
    code: 'ADDRESS_NOT_AVAILABLE',
    message: `${address ?? 'The address'} is not an address of this machine.`,
    fix: 'Listen on an address this machine has (127.0.0.1 for this machine only; `ip -brief address` lists them).',
    details: { address },
  };
}

function permissionDenied(error: SystemError, { address, path }: Place): ErrorShape {
  return {
    code: 'PERMISSION_DENIED',
    message: `Permission denied: ${error.syscall ?? 'access'} ${path ?? address ?? ''}`.trim() + '.',
    fix: path
      ? `Run as a user that may use ${path} (the service's own user, e.g. \`sudo -u tunnel-manager …\`), or point --data-dir, --config or --out at a place this user may write; \`ls -ld ${path}\` and the directories above it show owner and mode.`
      : `Run as a user allowed to do this${address ? ` (ports below 1024 need CAP_NET_BIND_SERVICE: listen on a port above 1023)` : ''}.`,
    details: { path, address, syscall: error.syscall ?? null },
  };
}

function fileNotFound(error: SystemError, { path }: Place): ErrorShape {
  return {
    code: 'FILE_NOT_FOUND',
    message: `No such file or directory: ${path ?? error.message}.`,
    fix: `Check the path${path ? ` ${path}` : ''}: create what is missing, or pass the right one.`,
    details: { path, syscall: error.syscall ?? null },
  };
}

/** Node's system error codes we turn into our own, and how. */
const ENVIRONMENT_ERRORS: Readonly<Record<string, (error: SystemError, place: Place) => ErrorShape>> = {
  EADDRINUSE: addressInUse,
  EADDRNOTAVAIL: addressNotAvailable,
  EACCES: permissionDenied,
  EPERM: permissionDenied,
  EROFS: permissionDenied,
  ENOENT: fileNotFound,
  ENOTDIR: fileNotFound,
};

/**
 * A problem of the machine rather than of tunnel-manager, as its own code with a fix: an address another program
 * holds, a file this user may not touch, a path that does not exist. Null for anything else (which stays INTERNAL).
 */
export function environmentErrorShape(error: unknown): ErrorShape | null {
  if (!isSystemError(error)) return null;
  const shape = ENVIRONMENT_ERRORS[error.code];
  if (shape === undefined) return null;
  const address = error.address === undefined ? null : `${error.address}${error.port === undefined ? '' : `:${error.port}`}`;
  return shape(error, { address, path: error.path ?? null });
}

/**
 * Any thrown value as the one shape: a TunnelManagerError as it is, a problem of the machine (environmentErrorShape)
 * with its own code, and anything else as INTERNAL with a fix that says where to look.
 */
export function toErrorShape(error: unknown): ErrorShape {
  if (error instanceof TunnelManagerError) return error.toJSON();
  const environment = environmentErrorShape(error);
  if (environment !== null) return environment;
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
