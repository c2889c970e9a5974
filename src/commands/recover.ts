import { formatRecovery, recoverFromConfig } from '../app/operations/recover.ts';
import { configFrom } from './config-option.ts';
import { EXIT, print, UsageError, type Command } from './options.ts';
import { requireManagerStopped } from './manager-process.ts';

/** `tunnel-manager recover [--dry-run] [--json]`: rebuilds the route ledger from Cloudflare's markers and config.yml. */
export const recover: Command = async (positionals, options) => {
  if (positionals.length > 0) throw new UsageError('usage: tunnel-manager recover [--dry-run] [--json]');
  const config = configFrom(options);
  requireManagerStopped(config, 'the ledger cannot be rebuilt under it (it is the only writer of the routes)');
  const report = await recoverFromConfig(config, { dryRun: options['dry-run'] === true });
  print(options.json ? JSON.stringify(report, null, 2) : formatRecovery(report));
  return EXIT.ok;
};
