import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { userInfo } from 'node:os';
import { TunnelManagerError } from '../../errors.ts';
import { SecretsManager } from '../../secrets/secrets-manager.ts';
import type { Config } from '../config/config.ts';
import { checkAddresses, type AddressOptions } from './doctor-addresses.ts';
import { checkApi } from './doctor-api.ts';
import { check, messageOf, type DoctorCheck } from './doctor-check.ts';
import { checkFiles } from './doctor-files.ts';

export type { DoctorCheck };

export interface DoctorOptions extends AddressOptions {
  env?: NodeJS.ProcessEnv;
  /** The Cloudflare API's clock may differ from ours by this much before it is a problem; default 60 s. */
  maxClockSkewMs?: number;
}

const TOKEN_SECRET = 'cloudflare_api_token';
/** The credential deploy/tunnel-manager.service loads the token from (systemd's credential store, /etc/credstore/). */
const UNIT_CREDENTIAL = 'tunnel-manager.cloudflare_api_token';


function checkDataDir(config: Config): DoctorCheck {
  const dir = config.dataDir;
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.doctor-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (error) {
    return check('data directory', 'problem', `${dir} is not writable: ${messageOf(error)}`, `Give the user that runs tunnel-manager write access: chown -R "$(id -un)" ${dir}`);
  }
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o022) !== 0) {
    return check('data directory', 'problem', `${dir} is writable by others (mode ${mode.toString(8)}): its database and secrets could be changed`, `chmod 700 ${dir}`);
  }
  return check('data directory', 'ok', `${dir} (mode ${mode.toString(8)})`);
}

function checkDatabase(config: Config): DoctorCheck {
  if (!existsSync(config.databasePath)) return check('database', 'ok', `${config.databasePath} does not exist yet: created on first start`);
  try {
    accessSync(config.databasePath, constants.R_OK | constants.W_OK);
  } catch (error) {
    return check('database', 'problem', `${config.databasePath}: ${messageOf(error)}`, `Make it readable and writable by the user that runs tunnel-manager (chown, chmod 600).`);
  }
  return check('database', 'ok', config.databasePath);
}

function checkToken(config: Config, sandbox: boolean, env: NodeJS.ProcessEnv): DoctorCheck {
  if (sandbox) return check('Cloudflare API token', 'skipped', 'sandbox mode (no cloudflare.apiBaseUrl): the local emulator needs none');
  const secrets = new SecretsManager({ env, secretsDir: join(config.dataDir, 'secrets') });
  let location: ReturnType<SecretsManager['locate']>;
  try {
    location = secrets.locate(config.cloudflare.apiTokenSecret);
  } catch (error) {
    return check('Cloudflare API token', 'problem', messageOf(error), error instanceof TunnelManagerError ? error.fix : 'chmod 600 the secret file.');
  }
  if (!location) {
    const credentials = env.CREDENTIALS_DIRECTORY;
    return check(
      'Cloudflare API token',
      'problem',
      `no secret named ${config.cloudflare.apiTokenSecret} was found: not in TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN, not in ${join(config.dataDir, 'secrets')}, ` +
        (credentials ? `not in ${credentials} (the credential file is missing: systemd found none to load)` : 'and no systemd credentials were handed over ($CREDENTIALS_DIRECTORY is not set)'),
      `Put it in the credential file the unit loads (LoadCredential=${TOKEN_SECRET}:${UNIT_CREDENTIAL}): ` +
        `sudo install -d -m 0700 /etc/credstore && sudo install -m 0600 /dev/stdin /etc/credstore/${UNIT_CREDENTIAL} <<< "$CLOUDFLARE_API_TOKEN", then restart the service; ` +
        `or a 0600 file ${join(config.dataDir, 'secrets', TOKEN_SECRET)}, or TUNNEL_MANAGER_SECRET_CLOUDFLARE_API_TOKEN.`,
    );
  }
  return check('Cloudflare API token', 'ok', `found (${location.source})`);
}

function checkCredentialsFile(config: Config, sandbox: boolean): DoctorCheck {
  if (sandbox) return check('tunnel credentials', 'skipped', 'sandbox mode: the stand-in cloudflared needs none');
  const file = config.cloudflared.credentialsFile;
  if (!file) return check('tunnel credentials', 'warning', 'cloudflared.credentialsFile is not set: cloudflared must find its credentials by itself (e.g. a token in its own unit)');
  try {
    const credentials: unknown = JSON.parse(readFileSync(file, 'utf8'));
    const tunnelId = typeof credentials === 'object' && credentials !== null && 'TunnelID' in credentials ? credentials.TunnelID : undefined;
    if (tunnelId !== undefined && tunnelId !== config.tunnel.id) {
      return check('tunnel credentials', 'problem', `${file} is for tunnel ${String(tunnelId)}, the configuration says ${config.tunnel.id}`, 'Point cloudflared.credentialsFile at this tunnel\'s credentials, or fix tunnel.id.');
    }
    return check('tunnel credentials', 'ok', file);
  } catch (error) {
    return check('tunnel credentials', 'problem', `${file}: ${messageOf(error)}`, 'Create it with `cloudflared tunnel create` or copy it from the machine that did, readable by the service user.');
  }
}

function checkCloudflared(config: Config, sandbox: boolean, standin: string): DoctorCheck {
  const command = sandbox ? [process.execPath, standin] : (config.cloudflared.command ?? ['cloudflared']);
  const [program = 'cloudflared', ...args] = command;
  const result = spawnSync(program, [...args, '--version'], { encoding: 'utf8', timeout: 10_000 });
  if (result.error || result.status !== 0) {
    return check(
      'cloudflared',
      'problem',
      `${command.join(' ')} --version failed: ${result.error?.message ?? (result.stderr.trim() || `exit ${result.status}`)}`,
      'Install cloudflared (https://pkg.cloudflare.com) or set cloudflared.command to where it is.',
    );
  }
  return check('cloudflared', 'ok', `${sandbox ? 'stand-in: ' : ''}${result.stdout.trim().split('\n')[0] ?? ''}`);
}

async function checkDocker(config: Config): Promise<DoctorCheck> {
  const socket = config.docker.socketPath;
  if (!existsSync(socket)) return check('Docker', 'warning', `no socket at ${socket}: Docker targets cannot be used (host targets work)`, 'Start Docker, or set docker.socketPath.');
  const answer = await new Promise<string>((resolve) => {
    const connection = connect({ path: socket });
    let data = '';
    connection.setTimeout(3000);
    connection.on('connect', () => connection.write('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n'));
    connection.on('data', (chunk) => (data += chunk.toString()));
    connection.on('end', () => resolve(data));
    connection.on('timeout', () => {
      connection.destroy();
      resolve('timeout');
    });
    connection.on('error', (error) => resolve(`error: ${error.message}`));
  });
  if (answer.startsWith('HTTP/1.0 200') || answer.startsWith('HTTP/1.1 200')) return check('Docker', 'ok', `${socket} answers`);
  if (answer.includes('EACCES')) return socketRefused(socket);
  return check('Docker', 'warning', `${socket} did not answer /_ping (${answer.split('\r\n')[0] || 'no answer'})`, 'Check that dockerd runs.');
}

/**
 * Docker's socket refused this user: it is not in the socket's group (Docker's `docker` group), or joined it after
 * this process started. The unit does not name the group (a host without Docker has none), so the user must be in it.
 */
function socketRefused(socket: string): DoctorCheck {
  const user = userInfo().username;
  const gid = statSync(socket).gid;
  const group = groupNamed(gid);
  const groupName = group?.name ?? String(gid);
  if (group?.members.includes(user)) {
    return check('Docker', 'problem', `${socket}: permission denied: ${user} is in the group ${groupName}, but joined it after this process started`, 'Restart the service (sudo systemctl restart tunnel-manager), so that it starts with the group.');
  }
  return check(
    'Docker',
    'problem',
    `${socket}: permission denied: ${user} is not in the socket's group ${groupName} (gid ${gid})${group ? '' : ', which /etc/group does not name'}`,
    `sudo usermod -aG ${groupName} ${user}, then restart the service (sudo systemctl restart tunnel-manager).`,
  );
}

/** A group of /etc/group by gid, with its members. */
function groupNamed(gid: number): { name: string; members: string[] } | null {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id, members] = line.split(':');
      if (name && Number(id) === gid) return { name, members: (members ?? '').split(',').filter(Boolean) };
    }
  } catch {
    // no /etc/group: the gid alone
  }
  return null;
}

function checkConfigGit(config: Config): DoctorCheck {
  const dir = dirname(config.cloudflared.configPath);
  if (!existsSync(join(dir, '.git'))) return check('config.yml history (git)', 'ok', `${dir} has no git repository yet: created on first start`);
  const result = spawnSync('git', ['-C', dir, 'status', '--porcelain'], { encoding: 'utf8', timeout: 10_000 });
  if (result.error || result.status !== 0) {
    return check('config.yml history (git)', 'problem', `git status in ${dir} failed: ${result.error?.message ?? result.stderr.trim()}`, `Repair or move away ${join(dir, '.git')} (the next start creates a new history); check that git is installed.`);
  }
  if (existsSync(join(dir, '.git', 'index.lock'))) {
    return check('config.yml history (git)', 'problem', `${join(dir, '.git', 'index.lock')} exists: every commit will fail`, `If no git runs there, remove it: rm ${join(dir, '.git', 'index.lock')}`);
  }
  return check('config.yml history (git)', 'ok', dir);
}

/**
 * Everything `serve` needs from the machine, checked without starting it: the data directory and database, the
 * Cloudflare token and what it may do, the API and the clock, the tunnel's credentials, cloudflared, the addresses
 * the service and cloudflared listen on, Docker, and config.yml's git history. Each problem comes with its fix.
 */
export async function runDoctor(config: Config, paths: { managerPidfile: string; standin: string }, options: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const env = options.env ?? process.env;
  const sandbox = !config.cloudflare.apiBaseUrl;
  return [
    check('configuration', 'ok', `${config.source ?? 'embedded defaults'} (${sandbox ? 'sandbox' : 'production'} mode)`),
    checkDataDir(config),
    checkDatabase(config),
    checkToken(config, sandbox, env),
    ...(await checkApi(config, sandbox, env, options.maxClockSkewMs ?? 60_000)),
    checkCredentialsFile(config, sandbox),
    checkCloudflared(config, sandbox, paths.standin),
    ...(await checkAddresses(config, paths.managerPidfile, options)),
    await checkDocker(config),
    checkConfigGit(config),
    ...checkFiles(config),
  ];
}

/** Plain-text report: one line per check, the fix under each problem. */
export function formatDoctor(checks: DoctorCheck[]): string {
  const mark = { ok: '✓', warning: '!', problem: '✗', skipped: '-' } as const;
  const lines = checks.flatMap((c) => [`${mark[c.status]} ${c.name}: ${c.detail}`, ...(c.fix && c.status !== 'ok' ? [`    fix: ${c.fix}`] : [])]);
  const problems = checks.filter((c) => c.status === 'problem').length;
  lines.push('', problems === 0 ? 'No problem found.' : `${problems} problem${problems === 1 ? '' : 's'} found.`);
  return lines.join('\n');
}
