import type { LocateCloudflaredOptions } from '../../docker/cloudflared-location.ts';
import type { Config } from './config.ts';

/**
 * What the configuration says of where cloudflared runs: the container `docker.cloudflaredContainer` names; the
 * docker driver's own container; or the host, where the spawn, child and systemd drivers start it. A container of the
 * engine that merely looks like a cloudflared (another tunnel, another copy of a test suite) is then never taken
 * for this manager's.
 */
export function cloudflaredLocationOptions(config: Config): LocateCloudflaredOptions {
  if (config.docker.cloudflaredContainer) return { containerName: config.docker.cloudflaredContainer };
  if (config.cloudflared.driver === 'docker') return { containerName: config.cloudflared.containerName };
  return { startedOnHostBy: config.cloudflared.driver };
}
