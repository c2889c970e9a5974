/**
 * Guards for the values a parsed config.yml holds: YAML may put any value anywhere, and these say what one is
 * without a cast.
 */

import { isJsonObject } from '../../json-guards.ts';

/** A mapping (`key: value` lines), not a list or a scalar. */
export const isRecord = isJsonObject;

/** A stable text for a value: object keys sorted, so key order in the file does not count as a change. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    isRecord(inner) ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : inner,
  );
}
