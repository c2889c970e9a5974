import { describe, expect, it } from 'vitest';
import { captureLogs } from '../../helpers/log-capture.ts';
import { redact, REDACTED } from '../../../src/redact.ts';


describe('redaction', () => {
  const cfToken = 'Zx9_aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4';
  const mcpToken = 'tmk_' + 'A'.repeat(43);

  it('blanks secret keys and token-like values in log objects and messages', () => {
    const { logger, lines } = captureLogs();
    logger.info({ apiToken: cfToken, headers: { authorization: `Bearer ${cfToken}` }, nested: { note: `use ${mcpToken}` } }, `called with ${cfToken}`);
    logger.flush();
    const text = lines.join('');
    expect(text).not.toContain(cfToken);
    expect(text).not.toContain(mcpToken);
    const entry = JSON.parse(text) as Record<string, unknown>;
    expect(entry.apiToken).toBe(REDACTED);
    expect(entry.msg).toBe(`called with ${REDACTED}`);
    expect((entry.nested as { note: string }).note).toBe(`use ${REDACTED}`);
  });

  it('keeps what is not a secret readable: token hashes, git commit ids, tunnel ids, plain words', () => {
    const value = {
      tokenHash: 'sha256:' + 'ab'.repeat(32),
      commit: '3f786850e387550fdab836ed7e6dc881de23001b',
      tunnelId: 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b',
      message: 'tunnel is up',
    };
    expect(redact(value)).toEqual(value);
  });

  it('redacts error messages that carry a token', () => {
    expect(redact({ err: new Error(`401 for Bearer ${cfToken}`) })).toEqual({ err: { name: 'Error', message: `401 for ${REDACTED}` } });
  });
});
