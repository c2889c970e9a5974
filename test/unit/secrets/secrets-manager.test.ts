import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretsManager, secretEnvName } from '../../../src/secrets/secrets-manager.ts';
import { type TunnelManagerError } from '../../../src/errors.ts';

const NAME = 'cloudflare_api_token';
const VALUE = 'Zr4nDoMtOkEnVaLuE0123456789abcdefghijKLm';

let dir: string;
let secretsDir: string;
let credentialsDir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-secrets-'));
  secretsDir = join(dir, 'secrets');
  credentialsDir = join(dir, 'credentials');
  mkdirSync(secretsDir);
  mkdirSync(credentialsDir);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeSecret(path: string, value: string, mode: number) {
  writeFileSync(path, value);
  chmodSync(path, mode);
}

function caught(run: () => unknown): TunnelManagerError {
  try {
    run();
  } catch (error) {
    return error as TunnelManagerError;
  }
  throw new Error('expected an error');
}

describe('SecretsManager', () => {
  it('names the environment variable TUNNEL_MANAGER_SECRET_<NAME>', () => {
    expect(secretEnvName(NAME)).toBe('TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN');
    expect(secretEnvName('a.b-c')).toBe('TUNNEL_MANAGER_SECRET_A_B_C');
  });

  it('reads the environment first, then the secrets directory, then the systemd credentials directory', () => {
    writeSecret(join(secretsDir, NAME), 'from-file\n', 0o600);
    writeSecret(join(credentialsDir, NAME), 'from-systemd', 0o644);
    const env = { TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN: 'from-env', CREDENTIALS_DIRECTORY: credentialsDir };
    expect(new SecretsManager({ env, secretsDir }).get(NAME)).toBe('from-env');
    expect(new SecretsManager({ env: { CREDENTIALS_DIRECTORY: credentialsDir }, secretsDir }).get(NAME)).toBe('from-file');
    expect(new SecretsManager({ env: { CREDENTIALS_DIRECTORY: credentialsDir } }).get(NAME)).toBe('from-systemd');
    expect(new SecretsManager({ env: { CREDENTIALS_DIRECTORY: credentialsDir } }).locate(NAME)).toEqual({ source: 'systemd-credential', where: join(credentialsDir, NAME) });
  });

  it('accepts 0600 and 0400 files and strips one trailing newline', () => {
    writeSecret(join(secretsDir, NAME), `${VALUE}\n`, 0o400);
    expect(new SecretsManager({ env: {}, secretsDir }).require(NAME)).toBe(VALUE);
  });

  it('refuses a file readable by others with SECRET_INSECURE and the exact chmod, never the value', () => {
    const path = join(secretsDir, NAME);
    writeSecret(path, VALUE, 0o644);
    const error = caught(() => new SecretsManager({ env: {}, secretsDir }).get(NAME));
    expect(error.code).toBe('SECRET_INSECURE');
    expect(error.fix).toBe(`chmod 600 ${path}`);
    expect(error.details.mode).toBe('0644');
    expect(JSON.stringify(error.toJSON())).not.toContain(VALUE);
  });

  it('require() names every place it looked when the secret is missing or empty', () => {
    writeSecret(join(secretsDir, NAME), '', 0o600);
    const error = caught(() => new SecretsManager({ env: { CREDENTIALS_DIRECTORY: credentialsDir }, secretsDir }).require(NAME));
    expect(error.code).toBe('SECRET_MISSING');
    expect(error.message).toContain('TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN');
    expect(error.message).toContain(join(secretsDir, NAME));
    expect(error.message).toContain(join(credentialsDir, NAME));
    expect(error.fix).toContain('export TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN=');
    expect(error.fix).toContain(`LoadCredential=${NAME}:`);
    expect(new SecretsManager({ env: {} }).get(NAME)).toBeUndefined();
  });

  it('refuses names that could leave the directory', () => {
    for (const name of ['../etc/passwd', 'a/b', '', 'UPPER']) {
      expect(caught(() => new SecretsManager({ env: {}, secretsDir }).get(name)).code).toBe('INPUT_INVALID');
    }
  });
});
