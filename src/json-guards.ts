/** Type guards for values that come from outside our code (JSON bodies and columns, YAML, files, command lines): what a value is, without a cast. */

/** Any non-null object, arrays included (what `typeof value === 'object'` lets through once null is out). */
export function isObjectLike(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

/** A JSON object: non-null, an object, not an array. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return isObjectLike(value) && !Array.isArray(value);
}

/** A list of strings. */
export function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
