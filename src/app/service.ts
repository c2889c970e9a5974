import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { supervisorMachine, type SupervisorSettings } from '../../machines/supervisor.machine.ts';
import { tunnelMachine, type ProbeSample, type TunnelEmitted } from '../../machines/tunnel.machine.ts';
import { ChildProcessDriver } from '../cloudflared/child-driver.ts';
import type { ProcessDriver } from '../cloudflared/process-driver.ts';
import { openDatabase, type Database } from '../store/database.ts';
import { ActorRepository } from '../store/actor-repository.ts';
import { EventsRepository } from '../store/events-repository.ts';
import type { Config } from './config.ts';
import { startDurableSupervisor, type DurableSupervisor } from './durable-supervisor.ts';
import { EventBus } from './event-bus.ts';
import { machinesVersion } from './machine-version.ts';
import { provideTunnelEffects } from './tunnel-effects.ts';

const BIN = fileURLToPath(new URL('../../bin/tunnel-manager.js', import.meta.url));

export function tunnelSettingsFrom(config: Config): SupervisorSettings['tunnel'] {
  return {
    probeIntervalMs: config.health.probeIntervalSeconds * 1000,
    failuresBeforeRestart: config.health.failedProbesBeforeRestart,
    backoffMs: config.restart.backoffSeconds.map((seconds) => seconds * 1000),
    resetAfterMs: config.restart.resetAfterSeconds * 1000,
    stopGraceMs: config.restart.stopGraceSeconds * 1000,
    autostart: true,
  };
}

/** The command line cloudflared runs with; without a configured command, the sandbox's stand-in. */
export function cloudflaredArgv(config: Config): string[] {
  const command = config.cloudflared.command ?? [process.execPath, BIN, 'sandbox-cloudflared'];
  return [
    ...command,
    'tunnel',
    '--config',
    config.cloudflared.configPath,
    '--metrics',
    config.cloudflared.metricsAddress,
    'run',
    config.tunnel.id,
  ];
}

export interface Service {
  config: Config;
  db: Database;
  supervisor: DurableSupervisor;
  bus: EventBus;
  driver: ProcessDriver;
  stop(): Promise<void>;
}

/**
 * The composition root: configuration → store → adapters → machines.provide() → durable supervisor.
 */
export async function startService(config: Config, logger: Logger): Promise<Service> {
  const { db, migration } = openDatabase(config.databasePath);
  if (migration.applied.length > 0) logger.info({ migration }, 'database migrated');
  const actors = new ActorRepository(db);
  const bus = new EventBus(new EventsRepository(db));

  const driver: ProcessDriver = new ChildProcessDriver({ argv: cloudflaredArgv(config), logger });
  // Process-level probe until the HTTP health probe is wired in.
  const probe = async (): Promise<ProbeSample> => {
    const running = await driver.current();
    return running
      ? { at: Date.now(), result: 'ok', readyConnections: null }
      : { at: Date.now(), result: 'failed', readyConnections: null, error: 'cloudflared is not running' };
  };

  const tunnel = provideTunnelEffects(tunnelMachine, {
    driver,
    probe,
    startTimeoutMs: config.restart.startTimeoutSeconds * 1000,
    logger,
  });
  const machine = supervisorMachine.provide({ actors: { tunnel } });
  const supervisor = startDurableSupervisor({
    machine,
    settings: { tunnel: tunnelSettingsFrom(config) },
    repository: actors,
    machineVersion: machinesVersion(),
    logger,
  });

  const tunnelActor = supervisor.actor.getSnapshot().children.tunnel;
  tunnelActor?.on('*', (event: TunnelEmitted) => {
    const { type, at, ...data } = event;
    bus.publish(type, '*', data, at);
    logger.info({ event: type, ...data }, `tunnel event: ${type}`);
  });

  let stopping: Promise<void> | null = null;
  return {
    config,
    db,
    supervisor,
    bus,
    driver,
    stop() {
      stopping ??= (async () => {
        supervisor.stop();
        // A child cloudflared would be orphaned: stop it. Detached drivers leave it running for adoption.
        if (driver.kind === 'child') await driver.stop(config.restart.stopGraceSeconds * 1000);
        db.close();
      })();
      return stopping;
    },
  };
}
