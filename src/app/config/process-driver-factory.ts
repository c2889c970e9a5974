import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { ChildProcessDriver } from '../../cloudflared/drivers/child-driver.ts';
import { DockerDriver } from '../../cloudflared/drivers/docker-driver.ts';
import type { ProcessDriver } from '../../cloudflared/process-driver.ts';
import { SpawnDriver } from '../../cloudflared/drivers/spawn-driver.ts';
import { SystemdDriver } from '../../cloudflared/drivers/systemd-driver.ts';
import { buildTunnelArgv } from '../../cloudflared/tunnel-command.ts';
import { STANDIN_CLOUDFLARED_BUNDLE } from '../../package-root.ts';
import type { Config } from './config.ts';

/**
 * Without a configured command, cloudflared is the sandbox's stand-in: its own small bundle, which loads none of
 * the manager.
 */
export function cloudflaredCommand(config: Config): string[] {
  return config.cloudflared.command ?? [process.execPath, STANDIN_CLOUDFLARED_BUNDLE];
}

export interface DriverContext {
  env?: NodeJS.ProcessEnv;
  /** The sandbox's cloudflared (the real one or the stand-in) and the flags that point it at the sandbox edge. */
  cloudflared?: { command: string[]; flags: string[] };
  /** The metrics addresses replicas take in turn, chosen for this run (the sandbox picks free ports); else from the config. */
  metricsAddresses?: string[];
  logger?: Logger;
  docker?: Dockerode;
}

/** The cloudflared command line the spawn and child drivers run. */
function tunnelCommandOf(config: Config, context: DriverContext) {
  return {
    command: context.cloudflared?.command ?? cloudflaredCommand(config),
    configPath: config.cloudflared.configPath,
    metricsAddress: context.metricsAddresses?.[0] ?? config.cloudflared.metricsAddress,
    tunnelId: config.tunnel.id,
    flags: ['--grace-period', `${config.reload.drainGraceSeconds}s`, '--no-autoupdate', ...(context.cloudflared?.flags ?? [])],
  };
}

/** The process driver named by `cloudflared.driver`, with the command line cloudflared runs. */
export function createProcessDriver(config: Config, context: DriverContext = {}): ProcessDriver & { metricsAddress?: () => string } {
  const { cloudflared } = config;
  const base = tunnelCommandOf(config, context);
  // What the two drivers that start cloudflared themselves take when the caller gave it.
  const passed = { ...(context.env ? { env: context.env } : {}), ...(context.logger ? { logger: context.logger } : {}) };
  switch (cloudflared.driver) {
    case 'spawn':
      return new SpawnDriver({
        ...base,
        ...(context.metricsAddresses ? { replicaMetricsAddresses: context.metricsAddresses.slice(1) } : {}),
        pidfile: join(config.dataDir, 'cloudflared', 'cloudflared.pid'),
        ...passed,
      });
    case 'systemd':
      return new SystemdDriver({ unit: cloudflared.systemdUnit });
    case 'docker':
      return new DockerDriver({
        docker: context.docker ?? new Dockerode({ socketPath: config.docker.socketPath }),
        containerName: cloudflared.containerName,
      });
    case 'child':
      return new ChildProcessDriver({
        argv: buildTunnelArgv(base),
        ...passed,
      });
  }
}
