import { z } from 'zod';

/**
 * A DNS name as Tunnel Manager compares it: lower case. DNS names are
 * case-insensitive, so every name is made into a `Hostname` once, where it enters (a tool's argument, a Cloudflare
 * answer, a ledger row), and compared as it is from then on: no `toLowerCase()` beside a comparison.
 *
 * A `Hostname` is only normalised, not judged: Cloudflare and the ledger hold names a project may not ask for
 * (`*.153.se`, `_dmarc.153.se`, adopted records). Whether a project may ask for a name is the request's rule
 * (src/app/use-cases/hostname.ts). White space and a trailing dot are not stripped: a name with blanks around it is
 * no name (refused, the field named), and `153.se.` is not a zone a tool accepts (test/e2e/mcp-bad-input.test.ts
 * pins both refusals); stripping them would turn refused input into accepted input. A shared leaf: it imports only
 * packages (zod, for the contract's argument).
 */

declare const hostnameBrand: unique symbol;

/** A normalised DNS name (see the file's comment); made by `toHostname` only. */
export type Hostname = string & { readonly [hostnameBrand]: true };

/** What DNS allows in all. */
export const HOSTNAME_MAX_LENGTH = 253;

function normalised(raw: string): string {
  return raw.toLowerCase();
}

/** True when `value` is already in the one form: lower case, 1 to 253 characters, no blank or control character. */
export function isHostname(value: string): value is Hostname {
  return value.length > 0 && value.length <= HOSTNAME_MAX_LENGTH && value === normalised(value) && !/[\s\u0000-\u001f\u007f]/.test(value);
}

/** Normalises `raw`; null when it is no name at all (empty, too long, blanks or control characters). */
export function parseHostname(raw: string): Hostname | null {
  const value = normalised(raw);
  return isHostname(value) ? value : null;
}

/** The one constructor: normalises `raw`, then checks it; throws a RangeError naming the problem when it is no name at all. */
export function toHostname(raw: string): Hostname {
  const value = normalised(raw);
  if (isHostname(value)) return value;
  const tooLong = `it has ${value.length} characters, more than DNS allows (${HOSTNAME_MAX_LENGTH})`;
  const why = value.length === 0 ? 'it is empty' : value.length > HOSTNAME_MAX_LENGTH ? tooLong : 'it contains white space or control characters';
  throw new RangeError(`${JSON.stringify(raw.slice(0, 80))} is not a DNS name: ${why}`);
}

/** Two names are the same DNS name. */
export function sameHostname(a: string, b: string): boolean {
  return normalised(a) === normalised(b);
}

/**
 * A tool argument that names a DNS name (a zone, a hostname): normalised by the contract, so the use cases get a
 * `Hostname`. A value that is no name at all is the argument's error, naming it.
 */
export const hostnameArgument = z
  .string()
  .max(HOSTNAME_MAX_LENGTH, `at most ${HOSTNAME_MAX_LENGTH} characters`)
  .transform((raw, context): Hostname => {
    const value = parseHostname(raw);
    if (value !== null) return value;
    context.addIssue({ code: z.ZodIssueCode.custom, message: 'a DNS name, e.g. "153.se": not empty, no white space' });
    return z.NEVER;
  });
