import type { Database } from 'better-sqlite3';
import type { InspectionReport } from '../../contract/admin.ts';
import { ActorRepository } from '../../store/actor-repository.ts';
import { SUPERVISOR_ACTOR_ID } from '../actors/durable-supervisor.ts';
import { stateToString } from '../actors/transition-recorder.ts';

export type { InspectionReport };
/** One actor of the tree as supervisor_inspect shows it. */
export type ActorView = InspectionReport['actors'][number];

interface PersistedNode {
  value?: unknown;
  status?: string;
  context?: Record<string, unknown>;
  children?: Record<string, { snapshot?: PersistedNode }>;
}

const LEFT_OUT = new Set(['settings']);

/** A persisted XState snapshot node: every field is optional, so any object is one (the fields are read with care). */
function isPersistedNode(value: unknown): value is PersistedNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function operatorContext(context: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!context) return {};
  return Object.fromEntries(Object.entries(context).filter(([key]) => !LEFT_OUT.has(key)));
}

function walk(path: string, node: PersistedNode, into: ActorView[]): void {
  const children = Object.entries(node.children ?? {});
  // Machines have a state value; promise and callback actors are effects of their parent.
  const machines = children.filter(([, child]) => child.snapshot?.value !== undefined);
  into.push({
    path,
    state: stateToString(node.value),
    status: node.status ?? 'unknown',
    context: operatorContext(node.context),
    effects: children.filter(([, child]) => child.snapshot?.value === undefined).map(([id]) => id),
  });
  for (const [id, child] of machines) if (child.snapshot) walk(`${path}/${id}`, child.snapshot, into);
}

/** Every actor's state and context from the persisted snapshot, plus recent transitions (newest last). */
export function readInspection(db: Database, transitionLimit = 30): InspectionReport {
  const repository = new ActorRepository(db);
  const stored = repository.loadSnapshot(SUPERVISOR_ACTOR_ID);
  const actors: ActorView[] = [];
  if (stored && isPersistedNode(stored.snapshot)) walk('supervisor', stored.snapshot, actors);
  const transitions = repository
    .recentTransitions(transitionLimit)
    .reverse()
    .map((row) => ({ ...row, time: new Date(row.ts).toISOString() }));
  return {
    snapshotAt: stored ? new Date(stored.updatedAt).toISOString() : null,
    machineVersion: stored?.machineVersion ?? null,
    actors,
    transitions,
  };
}

function formatValue(value: unknown): string {
  if (typeof value === 'number' && value > 1_500_000_000_000 && value < 4_000_000_000_000) return new Date(value).toISOString();
  return JSON.stringify(value);
}

export function formatInspection(report: InspectionReport): string {
  if (report.actors.length === 0) return 'No persisted actor state yet: `tunnel-manager serve` has not run with this data directory.\n';
  const lines = [`Snapshot written ${report.snapshotAt} (machine version ${report.machineVersion})`, ''];
  for (const actor of report.actors) {
    lines.push(`${actor.path}: ${actor.state} (${actor.status})${actor.effects.length > 0 ? `  effects: ${actor.effects.join(', ')}` : ''}`);
    for (const [key, value] of Object.entries(actor.context)) lines.push(`    ${key}: ${formatValue(value)}`);
  }
  lines.push('', 'Recent transitions:');
  if (report.transitions.length === 0) lines.push('    (none)');
  for (const row of report.transitions) {
    lines.push(`    ${row.time}  ${row.actorId.padEnd(12)} ${(row.fromState ?? '∅').padEnd(18)} → ${row.toState.padEnd(18)} on ${row.eventType}`);
  }
  return `${lines.join('\n')}\n`;
}
