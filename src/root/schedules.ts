import type { Logger } from 'pino';
import type { Config } from '../app/config/config.ts';
import { labelProjectsOf } from '../app/config/config.ts';
import { backupDir, startBackupSchedule } from '../app/schedules/backup-schedule.ts';
import { startDeleteRetries } from '../app/schedules/delete-retry.ts';
import { startAnswerWatch } from '../app/schedules/origin-answer-watch.ts';
import { startRetention } from '../app/schedules/retention.ts';
import { startRouteExpiry } from '../app/schedules/route-expiry.ts';
import type { ManagerBackend } from '../app/use-cases/backend.ts';
import { startLabelRoutes, type LabelRoutes } from '../app/use-cases/label-routes.ts';
import { authorizeLabelRoute, policyFacts } from '../mcp/authorization.ts';
import type { TopologyTracker } from '../docker/topology-tracker.ts';
import type { Database } from '../store/database.ts';
import { orphanPolicyOf } from './actor-tree.ts';
import type { Store } from './store.ts';

interface ScheduleDeps {
  config: Config;
  backupIntervalMs: number | undefined;
  db: Database;
  store: Store;
  backend: ManagerBackend;
  tracker: TopologyTracker;
  logger: Logger;
}

/**
 * The schedules beside the actors: online backups, the publish-ahead watch, label routes, retention of the audit and
 * events, retries of deletes whose DNS record could not be deleted, and route expiry.
 */
export function startSchedules(deps: ScheduleDeps) {
  const { config, store, backend, logger } = deps;
  const stops: (() => void)[] = [];
  stops.push(startBackupSchedule({ db: deps.db, dir: backupDir(config), intervalMs: deps.backupIntervalMs ?? config.backup.intervalHours * 3_600_000, keep: config.backup.keep, logger }));
  const answerWatch = startAnswerWatch({
    routes: store.routes,
    bus: store.bus,
    check: (target) => backend.verifyTarget(target),
    intervalMs: config.publishAhead.checkSeconds * 1000,
    noticeAfterMs: config.publishAhead.noticeAfterMinutes * 60_000,
    logger,
  });
  stops.push(answerWatch.stop);
  const labelRoutes = config.labels.enabled ? startLabels(deps) : null;
  if (labelRoutes) stops.push(labelRoutes.stop);
  stops.push(startRetention({ audit: store.audit, events: store.events, auditDays: config.retention.auditDays, eventsDays: config.retention.eventsDays, logger }));
  stops.push(startDeleteRetries({ routes: store.routes, bus: store.bus, retry: (hostname) => backend.retryDelete(hostname), logger }));
  const expiry = startRouteExpiry({ routes: store.routes, policy: orphanPolicyOf(config), backend, logger });
  stops.push(expiry.stop);
  expiry.removeDue();
  return { labelRoutes, expiry, stop: () => stops.reverse().forEach((stop) => stop()) };
}

/** Routes from container labels, reconciled once now and then on every topology change and round. */
function startLabels(deps: ScheduleDeps): LabelRoutes {
  const { config, store } = deps;
  const projectRoles = new Map(config.projects.map((project) => [project.name, project.role]));
  // Read from the configuration once: the policy decides each label from them (src/mcp/authorization.ts).
  const labelRules = { labelProjects: labelProjectsOf(config), projects: projectRoles };
  const labels = startLabelRoutes({
    topology: () => deps.tracker.current(),
    backend: deps.backend,
    routes: store.routes,
    bus: store.bus,
    logger: deps.logger,
    graceMs: config.labels.releaseGraceSeconds * 1000,
    intervalMs: Math.max(1_000, Math.min(30_000, (config.labels.releaseGraceSeconds * 1000) / 2)),
    operatorProject: config.projects.find((project) => project.role === 'ms')?.name ?? config.cloudflare.adoptOwner,
    mayPublish: (label) => authorizeLabelRoute(label, labelRules, policyFacts(deps.backend)),
    projects: projectRoles,
  });
  void labels.reconcile();
  return labels;
}
