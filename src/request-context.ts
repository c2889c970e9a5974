import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which project the work in progress is for, carried through every await of a tool call (and the saga it starts),
 * so a shared resource deep below (the Cloudflare request budget) can give each project its share without every
 * layer passing the name along. Work outside any call (zone refresh, orphan scan, retries) belongs to no project.
 */
const storage = new AsyncLocalStorage<string>();

export function runForProject<T>(project: string, work: () => T): T {
  return storage.run(project, work);
}

/** The project the current work is for, or null for the service's own work. */
export function currentProject(): string | null {
  return storage.getStore() ?? null;
}

/**
 * Runs `work` as the service's own, whoever asked for it: clean-up that must not be refused for a project's spent
 * share (deleting a DNS record, undoing a failed request), so a project's limit never leaves a half-made route.
 */
export function runForService<T>(work: () => T): T {
  return storage.exit(work);
}
