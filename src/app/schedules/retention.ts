import type { Logger } from 'pino';
import type { AuditRepository } from '../../store/audit-repository.ts';
import type { EventsRepository } from '../../store/events-repository.ts';
import { startRounds } from './rounds.ts';

const DAY_MS = 24 * 60 * 60_000;

/**
 * Keeps the audit log and the events log from growing without end: rows older than `retention.auditDays` and
 * `retention.eventsDays` are deleted at start and once a day. Returns the function that stops it.
 */
export function startRetention(options: {
  audit: AuditRepository;
  events: EventsRepository;
  auditDays: number;
  eventsDays: number;
  logger: Logger;
  now?: () => number;
}): () => void {
  const now = options.now ?? Date.now;
  const prune = (): void => {
    const audit = options.audit.pruneBefore(now() - options.auditDays * DAY_MS);
    const events = options.events.pruneBefore(now() - options.eventsDays * DAY_MS);
    if (audit + events > 0) options.logger.info({ auditRows: audit, events, auditDays: options.auditDays, eventsDays: options.eventsDays }, 'pruned old audit rows and events');
  };
  prune();
  return startRounds(prune, { intervalMs: DAY_MS, logger: options.logger, what: 'pruning old audit rows and events' }).stop;
}
