import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** MCP bearer tokens: `tmk_` + 32 random bytes, base64url. Only their SHA-256 is stored (`sha256:<hex>`). */
export function generateToken(): string {
  return `tmk_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** Constant-time comparison of a presented token with a stored hash. */
export function tokenMatches(token: string, storedHash: string): boolean {
  const presented = Buffer.from(hashToken(token));
  const stored = Buffer.from(storedHash);
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}
