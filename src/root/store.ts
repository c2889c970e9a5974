import type { Config } from '../app/config/config.ts';
import { EventBus } from '../app/actors/event-bus.ts';
import { PortManager } from '../ports/port-manager.ts';
import { AuditRepository } from '../store/audit-repository.ts';
import type { Database } from '../store/database.ts';
import { DomainsRepository } from '../store/domains-repository.ts';
import { EventsRepository } from '../store/events-repository.ts';
import { HealthRepository } from '../store/health-repository.ts';
import { PortsRepository } from '../store/ports-repository.ts';
import { RoutesRepository } from '../store/routes-repository.ts';

/** The repositories over the one database, the event bus and the port manager. */
export function openStore(db: Database, config: Config) {
  const events = new EventsRepository(db);
  return {
    routes: new RoutesRepository(db),
    domains: new DomainsRepository(db),
    events,
    audit: new AuditRepository(db),
    health: new HealthRepository(db),
    bus: new EventBus(events),
    ports: new PortManager(new PortsRepository(db), config.projects),
  };
}
export type Store = ReturnType<typeof openStore>;

/** What the root closes when it stops (or when its start fails halfway), last opened first. */
export type Cleanups = (() => Promise<void> | void)[];
