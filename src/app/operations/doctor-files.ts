import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, relative } from 'node:path';
import type { Config } from '../config/config.ts';
import { check, type DoctorCheck } from './doctor-check.ts';

/**
 * `doctor`'s checks of the files the service reads and writes outside its data directory: who may change the
 * configuration, and whether config.yml's directory is there and the service's to write.
 */

/** deploy/tunnel-manager.service's ConfigurationDirectory= and its ConfigurationDirectoryMode=. */
const UNIT_CONFIGURATION_DIRECTORY = '/etc/tunnel-manager';
const UNIT_CONFIGURATION_MODE = 0o750;

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * The configuration decides what the service runs (cloudflared.command) and who may call it (the token hashes): no
 * one but its owner may change it, nor its directory. The unit's directory keeps the unit's mode, or systemd says at
 * every start that it does not change it.
 */
function checkConfiguration(config: Config): DoctorCheck {
  const file = config.source;
  if (file === null) return check('configuration files', 'ok', 'embedded defaults: no file');
  const dir = dirname(file);
  const fileMode = statSync(file).mode;
  const dirMode = statSync(dir).mode;
  if ((fileMode & 0o022) !== 0) {
    return check('configuration files', 'problem', `${file} (mode ${octal(fileMode)}) may be changed by others than its owner: it says what the service runs and who may call it`, `sudo chmod 640 ${file}`);
  }
  if ((dirMode & 0o022) !== 0) {
    return check('configuration files', 'problem', `${dir} (mode ${octal(dirMode)}) lets others than its owner replace ${file}`, `sudo chmod 750 ${dir}`);
  }
  if (dir === UNIT_CONFIGURATION_DIRECTORY && (dirMode & 0o777) !== UNIT_CONFIGURATION_MODE) {
    return check(
      'configuration files',
      'warning',
      `${dir} has mode ${octal(dirMode)}, the unit's ConfigurationDirectoryMode= ${octal(UNIT_CONFIGURATION_MODE)}: systemd leaves it, and says so at every start`,
      `sudo chmod ${octal(UNIT_CONFIGURATION_MODE)} ${dir}`,
    );
  }
  return check('configuration files', 'ok', `${file} (mode ${octal(fileMode)}) in ${dir} (mode ${octal(dirMode)})`);
}

/**
 * config.yml's directory (/etc/cloudflared on a host): the service writes config.yml and its git history there.
 * Under the unit it can create no directory outside its own (ProtectSystem=strict), so one outside the data directory
 * must exist, be the service user's, and be writable by no one else.
 */
function checkConfigDirectory(config: Config): DoctorCheck {
  const dir = dirname(config.cloudflared.configPath);
  const user = userInfo().username;
  if (!existsSync(dir)) {
    if (!relative(config.dataDir, dir).startsWith('..')) return check('config.yml directory', 'ok', `${dir} does not exist yet: created on first start`);
    return check(
      'config.yml directory',
      'problem',
      `${dir} does not exist: the service writes config.yml there, and cannot create it (the unit lets it write only there, if it exists)`,
      `sudo install -d -o ${user} -g ${user} -m 0750 ${dir} (cloudflared's credentials file for the tunnel belongs there too)`,
    );
  }
  const mode = statSync(dir).mode;
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return check('config.yml directory', 'problem', `${dir} is not writable by ${user}: config.yml and its history cannot be written`, `sudo chown -R ${user}: ${dir}`);
  }
  if ((mode & 0o022) !== 0) return check('config.yml directory', 'problem', `${dir} (mode ${octal(mode)}) lets others than its owner change config.yml`, `sudo chmod go-w ${dir}`);
  return check('config.yml directory', 'ok', `${dir} (mode ${octal(mode)})`);
}

export function checkFiles(config: Config): DoctorCheck[] {
  return [checkConfiguration(config), checkConfigDirectory(config)];
}
