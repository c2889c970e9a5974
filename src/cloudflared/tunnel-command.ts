/**
 * The command line every driver runs:
 *   [...command] tunnel [...flags] --config F --metrics ADDR run TUNNEL_ID
 * `command` is the executable and anything before `tunnel` (e.g. ["/usr/local/bin/cloudflared"], or
 * [node, ".../dist/standin-cloudflared.js"] in the sandbox); `flags` are extra tunnel
 * flags such as ["--grace-period", "30s", "--no-autoupdate"].
 */
export interface TunnelCommandOptions {
  command: readonly string[];
  configPath: string;
  metricsAddress: string;
  tunnelId: string;
  flags?: readonly string[];
}

export function buildTunnelArgv(options: TunnelCommandOptions): string[] {
  return [
    ...options.command,
    'tunnel',
    ...(options.flags ?? []),
    '--config',
    options.configPath,
    '--metrics',
    options.metricsAddress,
    'run',
    options.tunnelId,
  ];
}

/** cloudflared's --grace-period value for a number of milliseconds ("30s", "1500ms"). */
export function formatGracePeriod(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.round(ms)}ms`;
}
