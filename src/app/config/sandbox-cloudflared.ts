import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TunnelManagerError } from '../../errors.ts';
import { STANDIN_CLOUDFLARED_BUNDLE } from '../../package-root.ts';
import { STANDIN_MARK, STANDIN_VERSION } from '../../sandbox/standin-cloudflared/version.ts';
import type { Config } from './config.ts';

/**
 * Which cloudflared the sandbox runs: the real one when there is one, the stand-in otherwise.
 *
 *   1. `cloudflared.command` in the configuration;
 *   2. `$TM_CLOUDFLARED`: a path to the binary, or `standin` for the stand-in even when a real one is installed;
 *   3. `cloudflared` on `$PATH`;
 *   4. the stand-in (dist/standin-cloudflared.js).
 *
 * The answer says which and its version (`cloudflared --version`), for the banner and sandbox.json.
 */
export interface SandboxCloudflared {
  kind: 'real' | 'standin';
  /** What goes before `tunnel` on the command line. */
  command: string[];
  /** As `--version` printed it, e.g. "2026.3.0". */
  version: string;
  chosenBy: 'cloudflared.command' | 'TM_CLOUDFLARED' | 'PATH' | 'default';
}

function onPath(name: string, path: string | undefined): string | null {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Runs `command --version`; the version and whether it is the stand-in, or why it could not be run. */
function versionOf(command: readonly string[]): { version: string; standin: boolean } | { error: string } {
  const [executable = '', ...args] = command;
  try {
    const output = execFileSync(executable, [...args, '--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const version = /version (\S+)/.exec(output)?.[1];
    if (version === undefined) return { error: `\`${command.join(' ')} --version\` printed no version ("${output.trim().slice(0, 120)}")` };
    return { version, standin: output.includes(STANDIN_MARK) };
  } catch (error) {
    return { error: (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? String(error) };
  }
}

function notRunnable(command: readonly string[], chosenBy: SandboxCloudflared['chosenBy'], why: string): TunnelManagerError {
  const fixes: Record<SandboxCloudflared['chosenBy'], string> = {
    'cloudflared.command': 'Point cloudflared.command at an executable cloudflared (`which cloudflared`), or remove it to let the sandbox choose.',
    TM_CLOUDFLARED: 'Set TM_CLOUDFLARED to the path of an executable cloudflared, to `standin` for the stand-in, or unset it.',
    PATH: 'Repair or remove the `cloudflared` found on PATH, or set TM_CLOUDFLARED=standin to run the stand-in.',
    default: 'Run `npm run build` (it makes dist/standin-cloudflared.js).',
  };
  return new TunnelManagerError({
    code: 'CLOUDFLARED_NOT_RUNNABLE',
    message: `The sandbox cannot run cloudflared \`${command.join(' ')}\` (chosen by ${chosenBy}): ${why}.`,
    fix: fixes[chosenBy],
    details: { command, chosenBy },
  });
}

export function chooseSandboxCloudflared(config: Config, env: NodeJS.ProcessEnv = process.env): SandboxCloudflared {
  const standin = [process.execPath, STANDIN_CLOUDFLARED_BUNDLE];
  const fromEnv = env.TM_CLOUDFLARED?.trim();
  const found = config.cloudflared.command
    ? { command: config.cloudflared.command, chosenBy: 'cloudflared.command' as const }
    : fromEnv === 'standin'
      ? { command: standin, chosenBy: 'TM_CLOUDFLARED' as const }
      : fromEnv
        ? { command: [fromEnv], chosenBy: 'TM_CLOUDFLARED' as const }
        : ((path) => (path === null ? { command: standin, chosenBy: 'default' as const } : { command: [path], chosenBy: 'PATH' as const }))(onPath('cloudflared', env.PATH));
  // The bundled stand-in is known: no need to start a process to ask it.
  if (found.command.at(-1) === STANDIN_CLOUDFLARED_BUNDLE) return { kind: 'standin', command: [...found.command], version: STANDIN_VERSION, chosenBy: found.chosenBy };
  const version = versionOf(found.command);
  if ('error' in version) throw notRunnable(found.command, found.chosenBy, version.error);
  return { kind: version.standin ? 'standin' : 'real', command: [...found.command], version: version.version, chosenBy: found.chosenBy };
}
