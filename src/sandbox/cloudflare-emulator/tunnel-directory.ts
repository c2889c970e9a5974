import type { TunnelDirectory } from '../edge/edge.ts';
import type { CloudflareEmulator } from './server.ts';

/**
 * The account's tunnels as the sandbox edge sees them: whether a tunnel exists, its secret (checked when cloudflared
 * registers), and, once a configuration was PUT through the API (the tunnel is then remotely managed), that
 * configuration, which the edge pushes to the connected cloudflared as Cloudflare's edge does.
 */
export function emulatorTunnelDirectory(emulator: Pick<CloudflareEmulator, 'tunnel' | 'onChange'>): TunnelDirectory {
  /** The version last seen of each tunnel a cloudflared asked for: a change of it is a new configuration. */
  const versions = new Map<string, number>();
  return {
    lookup(tunnelId) {
      const tunnel = emulator.tunnel(tunnelId);
      if (tunnel === undefined) return null;
      versions.set(tunnelId, tunnel.version);
      return {
        accountTag: tunnel.accountId,
        secret: tunnel.secret === undefined ? null : Buffer.from(tunnel.secret, 'base64'),
        remoteConfiguration: tunnel.source === 'cloudflare' && tunnel.config !== null ? { version: tunnel.version, config: tunnel.config } : null,
      };
    },
    onConfigurationChange(listener) {
      return emulator.onChange(() => {
        for (const [tunnelId, version] of versions) {
          const now = emulator.tunnel(tunnelId)?.version;
          if (now !== undefined && now !== version) {
            versions.set(tunnelId, now);
            listener(tunnelId);
          }
        }
      });
    },
  };
}
