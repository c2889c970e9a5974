import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { ZoneDirectory } from '../cloudflare/zones.ts';
import { cloudflareProviderFor } from '../app/config/cloudflare-access.ts';
import type { Config } from '../app/config/config.ts';
import { startSandboxEnvironment } from '../app/config/sandbox-mode.ts';
import { createTunnelClient } from '../app/effects/tunnel-client.ts';
import { statusClass, type ManagerMetrics } from '../app/operations/metrics.ts';
import type { Cleanups, Store } from './store.ts';

/** Cloudflare (or the sandbox's emulator and edge), the zones, Docker, and the client of cloudflared. */
export async function connectAdapters(deps: {
  config: Config;
  mode: 'sandbox' | 'production';
  edgeListen: string | undefined;
  logger: Logger;
  store: Store;
  metrics: ManagerMetrics;
  cleanups: Cleanups;
}) {
  const { config, store, metrics, logger } = deps;
  const sandbox = deps.mode === 'sandbox' ? await startSandboxEnvironment(config, { ...(deps.edgeListen ? { edgeListen: deps.edgeListen } : {}), logger }) : null;
  if (sandbox) deps.cleanups.push(() => sandbox.close());
  const provider = cloudflareProviderFor(config, {
    sandbox,
    onResponse: (method, status, durationMs) => metrics.cloudflareRequest(method, status === null ? 'network' : statusClass(status), durationMs),
  });
  const zones = new ZoneDirectory({ listZones: () => provider.listZones(), domains: store.domains, defaultZone: config.tunnel.defaultZone });
  const docker = new Dockerode({ socketPath: config.docker.socketPath });
  const tunnelClient = await createTunnelClient({ config, sandbox, provider, docker, health: store.health, logger });
  return { sandbox, provider, zones, docker, tunnelClient };
}
export type Adapters = Awaited<ReturnType<typeof connectAdapters>>;
