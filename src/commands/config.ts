import { existsSync } from 'node:fs';
import type { Config } from '../app/config/config.ts';
import { IngressLoader, readConfigHistory } from '../cloudflared/ingress/ingress-loader.ts';
import { TunnelManagerError } from '../errors.ts';
import { configFrom, requireDatabase } from './config-option.ts';
import { EXIT, print, UsageError, type Command, type Options } from './options.ts';
import { runningManager } from './manager-process.ts';

/** `config history [--limit N] [--json]`: the versions of config.yml kept in git. */
async function history(config: Config, options: Options): Promise<number> {
  if (!existsSync(config.cloudflared.configPath) && !existsSync(config.databasePath)) requireDatabase(config);
  const limit = options.limit === undefined ? 20 : Number(options.limit);
  const versions = await readConfigHistory(config.cloudflared.configPath, limit);
  if (options.json) print(JSON.stringify(versions, null, 2));
  else if (versions.length === 0) print(`No history yet for ${config.cloudflared.configPath}.`);
  else for (const v of versions) print(`${v.commit.slice(0, 12)}  ${v.date}  ${v.subject}`);
  return EXIT.ok;
}

/** `config rollback COMMIT`: config.yml as it was at COMMIT, only while the tunnel manager (its one writer) is stopped. */
async function rollback(config: Config, commit: string | undefined): Promise<number> {
  if (!commit) throw new UsageError('usage: tunnel-manager config rollback COMMIT (see `tunnel-manager config history`)');
  const running = runningManager(config);
  if (running !== null) {
    throw new TunnelManagerError({
      code: 'INPUT_INVALID',
      message: `The service (pid ${running}) owns ${config.cloudflared.configPath}: only its ingress actor may write it.`,
      fix: `Ask it through MCP as the meta-supervisor: tunnel_rollback_config { "commit": "${commit}" } (it validates, writes, commits and reloads), or stop the service and run this again.`,
      details: { pid: running },
    });
  }
  const loader = await IngressLoader.open({ configPath: config.cloudflared.configPath, gitBackup: true });
  const result = await loader.rollbackTo(commit);
  print(
    `restored ${config.cloudflared.configPath} from ${result.restoredFrom.slice(0, 12)}${result.commit ? ` as commit ${result.commit.slice(0, 12)}` : ' (no change)'}; ` +
      'cloudflared loads it when the service starts (managed rules follow the route ledger).',
  );
  return EXIT.ok;
}

/** `tunnel-manager config history | config rollback COMMIT`. */
export const configCommand: Command = async ([sub, commit], options) => {
  const config = configFrom(options);
  if (sub === 'history') return history(config, options);
  if (sub === 'rollback') return rollback(config, commit);
  throw new UsageError('usage: tunnel-manager config history | tunnel-manager config rollback COMMIT');
};
