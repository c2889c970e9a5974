import { readFileSync } from 'node:fs';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { ProbeSample } from '../../../machines/tunnel.machine.ts';
import type { CloudflareProvider } from '../../cloudflare/cloudflare-provider.ts';
import { ConfigDocument } from '../../cloudflared/ingress/config-document.ts';
import { probeTunnelHealth } from '../../cloudflared/health-probe.ts';
import { assertAddressFree } from '../../cloudflared/metrics-address.ts';
import type { ProcessDriver } from '../../cloudflared/process-driver.ts';
import { pushRemoteConfiguration, reloadWithReplica, restartTunnel, type ReloadResult } from '../../cloudflared/replica-reload.ts';
import { SpawnDriver } from '../../cloudflared/drivers/spawn-driver.ts';
import { TunnelManagerError } from '../../errors.ts';
import type { HealthSample } from '../../health-sample.ts';
import type { HealthRepository } from '../../store/health-repository.ts';
import type { Config } from '../config/config.ts';
import { createProcessDriver } from '../config/process-driver-factory.ts';
import type { SandboxEnvironment } from '../config/sandbox-mode.ts';

/**
 * Everything the tunnel actor's effects (src/app/effects/tunnel-effects.ts) reach cloudflared with: the process driver, where
 * cloudflared serves its metrics now, one health probe, the health history a probe lands in, and the reload strategy
 * (remote configuration, replica takeover, or restart).
 */
export interface TunnelClient {
  driver: ProcessDriver;
  /** Where cloudflared serves /ready and /metrics now (it moves during a replica reload). */
  metricsAddress(): string;
  probe(): Promise<ProbeSample>;
  /** Keeps a sample the tunnel actor acted on in the health history (polls while a start waits are not kept). */
  recordSample(sample: ProbeSample): void;
  /** Makes cloudflared load the current config.yml. */
  reload(input: unknown, signal?: AbortSignal): Promise<ReloadResult>;
  /** An operator's restart: a replica takes over where the driver allows it (no outage), else stop and start. */
  replace(input: unknown, signal?: AbortSignal): Promise<ReloadResult>;
}

export interface TunnelClientOptions {
  config: Config;
  sandbox: SandboxEnvironment | null;
  provider: CloudflareProvider;
  docker: Dockerode;
  health: HealthRepository;
  logger: Logger;
}

export async function createTunnelClient(options: TunnelClientOptions): Promise<TunnelClient> {
  const { config, sandbox, logger } = options;
  if (!sandbox && config.cloudflared.metricsAddress.endsWith(':0')) {
    throw new TunnelManagerError({
      code: 'CONFIG_INVALID',
      message: `cloudflared.metricsAddress is ${config.cloudflared.metricsAddress}: port 0 means "a free port" only in the sandbox; a real cloudflared must be probed on a fixed address.`,
      fix: 'Set cloudflared.metricsAddress to a fixed HOST:PORT nobody else uses (cloudflared\'s default is 127.0.0.1:20241; reloads also use the next port).',
      details: { metricsAddress: config.cloudflared.metricsAddress },
    });
  }
  const driver = createProcessDriver(config, {
    ...(sandbox ? { env: sandbox.cloudflaredEnv, cloudflared: sandbox.cloudflared } : {}),
    ...(sandbox?.metricsAddresses ? { metricsAddresses: sandbox.metricsAddresses } : {}),
    logger,
    docker: options.docker,
  });
  const metricsAddress = () => (driver instanceof SpawnDriver ? driver.metricsAddress() : (sandbox?.metricsAddresses?.[0] ?? config.cloudflared.metricsAddress));
  if (driver instanceof SpawnDriver) {
    // A manager killed during a reload leaves its replica (or the old process it was draining) running.
    const reaped = await driver.reapAbandoned((config.reload.drainGraceSeconds + 5) * 1000);
    if (reaped.length > 0) logger.warn({ pids: reaped }, 'stopped cloudflared processes left behind by an unfinished reload');
  }

  /** A new process takes over from the running one: a replica where the driver can run two, else stop and start. */
  function replaceProcess(signal?: AbortSignal): Promise<ReloadResult> {
    if (driver instanceof SpawnDriver && config.reload.strategy === 'replica') {
      return reloadWithReplica({
        driver,
        readyTimeoutMs: config.reload.replicaReadyTimeoutSeconds * 1000,
        drainGraceMs: (config.reload.drainGraceSeconds + 5) * 1000,
        logger,
        assertAddressFree,
        ...(signal ? { signal } : {}),
      });
    }
    return restartTunnel(driver, config.restart.stopGraceSeconds * 1000);
  }

  const fullSample = new WeakMap<ProbeSample, HealthSample>();
  let lastRollup = 0;
  return {
    driver,
    metricsAddress,
    async probe() {
      const sample = await probeTunnelHealth({
        driver,
        metricsAddress,
        expectedConnections: config.cloudflared.expectedConnections,
        timeoutMs: config.health.probeTimeoutSeconds * 1000,
      });
      const brief: ProbeSample = { at: sample.ts, result: sample.result, readyConnections: sample.readyConnections, ...(sample.error ? { error: sample.error } : {}) };
      fullSample.set(brief, sample);
      return brief;
    },
    recordSample(brief) {
      const sample = fullSample.get(brief);
      if (!sample) return;
      options.health.insert(sample);
      if (sample.ts - lastRollup > 3_600_000) {
        lastRollup = sample.ts;
        options.health.rollupAndPrune(sample.ts, config.health.rawRetentionDays);
      }
    },
    async reload(_input, signal) {
      if (config.tunnel.remotelyManaged) {
        const content = readFileSync(config.cloudflared.configPath, 'utf8');
        const current = await driver.current();
        return pushRemoteConfiguration({
          config: ConfigDocument.parse(content).model(),
          putConfiguration: (model) => options.provider.putTunnelConfiguration({ ingress: model.ingress, ...(model.originRequest ? { originRequest: model.originRequest } : {}) }),
          currentPid: current?.pid ?? null,
        });
      }
      return replaceProcess(signal);
    },
    replace: (_input, signal) => replaceProcess(signal),
  };
}
