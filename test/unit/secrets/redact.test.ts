import { describe, expect, it } from 'vitest';
import { redact, redactString, REDACTED } from '../../../src/redact.ts';
import { seededRandom } from '../../helpers/random.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';


function randomToken(random: () => number, length: number): string {
  let token = '';
  for (let i = 0; i < length; i += 1) token += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return token;
}

/** Tokens of every shape: random, and with `-` or `_` forced at either end or both. */
function tokens(count: number): string[] {
  const random = seededRandom(20261203);
  const out: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const body = randomToken(random, 40);
    const edge = i % 5;
    const token =
      edge === 1 ? `-${body.slice(1)}` : edge === 2 ? `${body.slice(0, 39)}-` : edge === 3 ? `-${body.slice(1, 39)}-` : edge === 4 ? `_${body.slice(1, 39)}_` : body;
    if (/^[0-9a-f]{40}$/.test(token)) continue; // a hex digest reads as a git commit id and stays readable
    out.push(token);
  }
  return out;
}

describe('redaction of generated tokens', () => {
  const contexts = [
    (t: string) => t,
    (t: string) => `token ${t} expired`,
    (t: string) => `api_token=${t}`,
    (t: string) => `"${t}"`,
    (t: string) => `(${t}).`,
    (t: string) => `Bearer ${t}`,
    (t: string) => `line one\n${t}\nline two`,
  ];

  it('replaces every 40-character Cloudflare-format token, whatever its first and last character', () => {
    const missed: string[] = [];
    for (const [index, token] of tokens(10_000).entries()) {
      const text = (contexts[index % contexts.length] as (t: string) => string)(token);
      if (redactString(text).includes(token)) missed.push(text);
    }
    expect(missed).toEqual([]);
  });

  it('replaces our own MCP tokens wherever they stand', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 1000; i += 1) {
      const token = `tmk_${randomToken(random, 43)}`;
      expect(redactString(`x-${token}-y`)).not.toContain(token.slice(4));
    }
  });

  it('leaves a longer word alone: a 41-character run is not a 40-character token', () => {
    const long = 'a'.repeat(20) + 'B'.repeat(21);
    expect(redactString(long)).toBe(long);
  });

  it('redacts inside nested values, keys that name a secret, and keeps hashes and commit ids', () => {
    const [token] = tokens(1);
    const value = { note: [`use ${token}`], apiKey: 'short', tokenHash: 'sha256:' + 'ab'.repeat(32), commit: '3f786850e387550fdab836ed7e6dc881de23001b' };
    expect(redact(value)).toEqual({ note: [`use ${REDACTED}`], apiKey: REDACTED, tokenHash: value.tokenHash, commit: value.commit });
  });
});
