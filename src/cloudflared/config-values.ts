/**
 * Guards for the values a parsed config.yml holds: YAML may put any value anywhere, and these say what one is
 * without a cast.
 */

/** A mapping (`key: value` lines), not a list or a scalar. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
