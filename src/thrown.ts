/**
 * What a thrown value says, read without casts: `catch` hands over `unknown`, and the adapters want its message,
 * the errno code Node puts on system errors (`ENOENT`, `EPERM`) or the HTTP status dockerode puts on Engine errors.
 */

/** The message of an Error, or the value itself as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether the value is a Node system error (an Error with an errno `code`). */
export function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error && typeof error.code === 'string';
}

/** The errno code of a Node system error (`ENOENT`, `EPERM`…), or undefined for anything else. */
export function errnoCodeOf(error: unknown): string | undefined {
  return isErrno(error) ? error.code : undefined;
}

/** The HTTP status an Engine API error carries (dockerode sets `statusCode`), or undefined. */
export function statusCodeOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('statusCode' in error)) return undefined;
  return typeof error.statusCode === 'number' ? error.statusCode : undefined;
}
