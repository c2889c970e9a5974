/**
 * Redaction of anything token-like, for logs, errors and audit rows (secrets never leave the process).
 * Two nets: keys whose name says "secret", and values that look like a credential whatever their key.
 */
const SECRET_KEY = /(token|secret|password|passwd|authorization|api[-_]?key|credential|cookie|private[-_]?key)/i;

/** Token characters: a match must not be glued to more of them (`\b` would miss tokens that start or end with `-`). */
const T = 'A-Za-z0-9_-';

const SECRET_VALUE_PATTERNS: RegExp[] = [
  /\bBearer\s+[A-Za-z0-9._~+/=-]+/gi,
  new RegExp(`(?<![A-Za-z0-9])tmk_[${T}]{16,}`, 'g'), // our MCP tokens
  // Cloudflare API tokens and similar: 40 url-safe characters that are not a plain hex digest (git ids stay readable).
  new RegExp(`(?<![${T}])(?![0-9a-f]{40}(?![${T}]))[${T}]{40}(?![${T}])`, 'g'),
];

export const REDACTED = '[REDACTED]';

export function redactString(value: string): string {
  return SECRET_VALUE_PATTERNS.reduce((text, pattern) => text.replace(pattern, REDACTED), value);
}

/**
 * A deep copy with secret keys blanked and token-like strings replaced. Cycles and depth are bounded.
 * Callers keep the shape they passed in (the copy has the same keys); an Error comes back as `{ name, message }`.
 */
export function redact<T>(value: T, depth?: number): T;
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[…]';
  if (typeof value === 'string') return redactString(value);
  if (Array.isArray(value)) return value.map((item: unknown) => redact(item, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: redactString(value.message) };
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const isHashField = /hash$/i.test(key);
    const copy = SECRET_KEY.test(key) && !isHashField && item !== undefined && item !== null ? REDACTED : redact(item, depth + 1);
    // A `__proto__` key (JSON.parse makes it an own key) must stay a key, not become the copy's prototype.
    Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
