import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TunnelManagerError } from '../errors.ts';

/**
 * Where secrets come from, in order:
 *   1. the environment variable TUNNEL_MANAGER_SECRET_<NAME> (name upper-cased, other characters → `_`);
 *   2. the file <secretsDir>/<name>, which must not be readable by group or others (mode 0600 or 0400);
 *   3. systemd's $CREDENTIALS_DIRECTORY/<name> (LoadCredential=/SetCredential=).
 * Values never reach a log, an error message or `details`: errors name the places, never the contents.
 */

export type SecretSource = 'env' | 'file' | 'systemd-credential';

export interface SecretsManagerOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory of secret files; optional. */
  secretsDir?: string;
  /** Default: $CREDENTIALS_DIRECTORY from `env`. */
  credentialsDirectory?: string;
}

export interface SecretLocation {
  source: SecretSource;
  /** The variable name or the file path (never the value). */
  where: string;
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

export function secretEnvName(name: string): string {
  return `TUNNEL_MANAGER_SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** A secret file's text without the trailing newline an editor or `echo` leaves. */
function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export class SecretsManager {
  private readonly env: NodeJS.ProcessEnv;
  private readonly secretsDir: string | undefined;
  private readonly credentialsDirectory: string | undefined;

  constructor(options: SecretsManagerOptions = {}) {
    this.env = options.env ?? process.env;
    this.secretsDir = options.secretsDir === undefined ? undefined : resolve(options.secretsDir);
    const credentials = options.credentialsDirectory ?? this.env.CREDENTIALS_DIRECTORY;
    this.credentialsDirectory = credentials === undefined || credentials === '' ? undefined : resolve(credentials);
  }

  /** Where `name` would be read from, or undefined when it is in none of the places. Throws SECRET_INSECURE for an open file. */
  locate(name: string): SecretLocation | undefined {
    this.checkName(name);
    const variable = secretEnvName(name);
    const fromEnv = this.env[variable];
    if (fromEnv !== undefined && fromEnv !== '') return { source: 'env', where: variable };
    if (this.secretsDir !== undefined) {
      const path = join(this.secretsDir, name);
      if (isFile(path)) {
        this.checkPermissions(name, path);
        return { source: 'file', where: path };
      }
    }
    if (this.credentialsDirectory !== undefined) {
      const path = join(this.credentialsDirectory, name);
      if (isFile(path)) return { source: 'systemd-credential', where: path };
    }
    return undefined;
  }

  /** The secret's value, or undefined when it is nowhere (an empty value counts as absent). */
  get(name: string): string | undefined {
    const location = this.locate(name);
    if (location === undefined) return undefined;
    const value = location.source === 'env' ? (this.env[location.where] ?? '') : readSecretFile(location.where);
    return value === '' ? undefined : value;
  }

  /** The secret's value, or SECRET_MISSING naming every place it was looked for and how to put it there. */
  require(name: string): string {
    const value = this.get(name);
    if (value !== undefined) return value;
    const variable = secretEnvName(name);
    const places = [`the environment variable ${variable}`];
    const fixes = [`export ${variable}=<value>`];
    if (this.secretsDir !== undefined) {
      const path = join(this.secretsDir, name);
      places.push(`the file ${path}`);
      fixes.push(`install -m 600 /dev/null ${path} && $EDITOR ${path}`);
    }
    if (this.credentialsDirectory !== undefined) places.push(`the systemd credential ${join(this.credentialsDirectory, name)}`);
    fixes.push(`in the systemd unit: LoadCredential=${name}:/etc/tunnel-manager/${name}`);
    throw new TunnelManagerError({
      code: 'SECRET_MISSING',
      message: `The secret ${name} was not found (looked in ${places.join(', ')}), or it is empty.`,
      fix: `Provide it in one of these ways: ${fixes.join('; or ')}.`,
      details: { secret: name, lookedIn: places },
    });
  }

  private checkName(name: string): void {
    if (!NAME.test(name)) {
      throw new TunnelManagerError({
        code: 'INPUT_INVALID',
        message: `${JSON.stringify(name)} is not a valid secret name.`,
        fix: 'Use lowercase letters, digits, dots, dashes and underscores, such as cloudflare_api_token.',
        details: { field: 'secret name' },
      });
    }
  }

  private checkPermissions(name: string, path: string): void {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new TunnelManagerError({
        code: 'SECRET_INSECURE',
        message: `The secret file ${path} is readable or writable by others (mode ${mode.toString(8).padStart(4, '0')}); refusing to use it.`,
        fix: `chmod 600 ${path}`,
        details: { secret: name, path, mode: mode.toString(8).padStart(4, '0') },
      });
    }
  }
}
