import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../app/config/config.ts';
import { isProcessRunning } from '../cloudflared/process-identity.ts';
import { TunnelManagerError } from '../errors.ts';

/** Where `serve` writes its pid while it runs. */
export function managerPidfile(config: Config): string {
  return join(config.dataDir, 'tunnel-manager.pid');
}

/** The pid of a tunnel manager running on this data directory, if any. */
export function runningManager(config: Config): number | null {
  const file = managerPidfile(config);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessRunning(pid) ? pid : null;
}

/** Commands that replace or rebuild what the tunnel manager writes refuse while it runs: it is the only writer. */
export function requireManagerStopped(config: Config, why: string): void {
  const running = runningManager(config);
  if (running === null) return;
  throw new TunnelManagerError({
    code: 'INPUT_INVALID',
    message: `The service (pid ${running}) is running on ${config.dataDir}: ${why}.`,
    fix: `Stop it first (systemctl stop tunnel-manager, or kill -TERM ${running}), run this again, then start it.`,
    details: { pid: running, dataDir: config.dataDir },
  });
}
