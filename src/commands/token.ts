import { readFileSync } from 'node:fs';
import { generateToken, hashToken } from '../secrets/token.ts';
import { EXIT, print, UsageError, type Command } from './options.ts';

/** `tunnel-manager token new | token hash`: a new MCP token with its hash, or the hash of a token read on stdin. */
export const token: Command = ([sub]) => {
  if (sub === 'new') {
    const value = generateToken();
    print(`token: ${value}\ntokenHash: ${hashToken(value)}`);
    return Promise.resolve(EXIT.ok);
  }
  if (sub === 'hash') {
    const value = readFileSync(0, 'utf8').trim();
    if (!value) throw new UsageError('token hash reads the token on standard input, e.g. `printf %s "$TOKEN" | tunnel-manager token hash`');
    print(hashToken(value));
    return Promise.resolve(EXIT.ok);
  }
  throw new UsageError('usage: tunnel-manager token new | tunnel-manager token hash');
};
