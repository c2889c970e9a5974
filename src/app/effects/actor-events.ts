import type { Logger } from 'pino';
import type { TopologyEmitted } from '../../../machines/topology.machine.ts';
import type { Config } from '../config/config.ts';
import type { EventBus } from '../actors/event-bus.ts';
import type { ChildOf } from '../actors/supervisor-children.ts';
import type { ManagerMetrics } from '../operations/metrics.ts';

/**
 * What the long-lived actors tell the world: their emitted events become `events` rows and bus broadcasts (the MCP
 * sessions listen there), metrics and log lines. A topology change is also handed to `onTopologyChanged` (target
 * drift and label routes).
 */
export function reportActorEvents(options: {
  childOf: ChildOf;
  config: Config;
  bus: EventBus;
  metrics: ManagerMetrics;
  logger: Logger;
  onTopologyChanged: (event: Extract<TopologyEmitted, { type: 'topology.changed' }>) => void;
}): void {
  const { childOf, config, bus, metrics, logger } = options;
  childOf('tunnel').on('*', (event) => {
    if (event.type === 'tunnel.reloaded') {
      metrics.reload(event.outcome?.strategy ?? 'on-next-start', 'ok');
      return;
    }
    if (event.type === 'tunnel.reload_failed') metrics.reload(config.reload.strategy, 'failed');
    const { type, at, ...data } = event;
    bus.publish(type, '*', data, at);
    logger.info({ event: type, ...data }, `tunnel event: ${type}`);
  });
  childOf('topology').on('*', (event) => {
    metrics.dockerEvent(event.type.replace(/^topology\./, ''));
    if (event.type === 'topology.unavailable') logger.warn({ error: event.error, attempt: event.attempt }, 'Docker is unavailable; host targets keep working');
    if (event.type === 'topology.changed') options.onTopologyChanged(event);
  });
  childOf('zones').on('*', (event) => {
    if (event.type !== 'zones.refreshed') {
      logger.warn({ error: event.error, retryInMs: event.retryInMs }, 'zone refresh failed');
      return;
    }
    const checked = event.checked ?? [];
    logger.info({ zones: event.zones, added: event.added, removed: event.removed, adopted: event.adopted, checkedAfterRestore: checked.length }, 'zones refreshed');
    if (event.adopted.length > 0) bus.publish('routes.adopted', config.cloudflare.adoptOwner, { hostnames: event.adopted });
    if (event.adopted.length > 0 || checked.length > 0) childOf('ingress').send({ type: 'CHANGE', change: { hostname: '*', action: 'resync', project: '*' } });
  });
  childOf('ingress').on('*', (event) => {
    if (event.type === 'ingress.restored' || event.type === 'ingress.restore_failed') {
      bus.publish(`config.${event.type === 'ingress.restored' ? 'restored' : 'restore_failed'}`, '*', {
        failedCommit: event.failedCommit,
        reloadError: event.reloadError,
      });
    }
  });
}
