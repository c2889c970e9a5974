import { sortedBy, type DockerContainer, type DockerNetwork, type Topology } from './topology-model.ts';

/**
 * What changed between two topologies, keyed by Docker id (so a rename is a change, not a remove + add).
 * Pure; the order of the input lists does not matter, the output is sorted by name then id.
 */

export interface Changed<T> {
  id: string;
  name: string;
  before: T;
  after: T;
  /** Which fields differ, e.g. `state`, `name`, `networks`, `ports`. */
  fields: string[];
}

export interface TopologyDiff {
  empty: boolean;
  networks: { added: DockerNetwork[]; removed: DockerNetwork[]; changed: Changed<DockerNetwork>[] };
  containers: { added: DockerContainer[]; removed: DockerContainer[]; changed: Changed<DockerContainer>[] };
}

const NETWORK_FIELDS = ['name', 'driver', 'subnet', 'internal', 'labels'] as const;
const CONTAINER_FIELDS = ['name', 'image', 'state', 'networkMode', 'labels', 'extraHosts', 'networks', 'ports', 'command'] as const;

export function diffTopology(before: Topology, after: Topology): TopologyDiff {
  const networks = diffById(before.networks, after.networks, (a, b) => NETWORK_FIELDS.filter((f) => !same(a[f], b[f])));
  const containers = diffById(before.containers, after.containers, (a, b) =>
    CONTAINER_FIELDS.filter((f) => {
      // The store does not keep commands; an unknown command is not a change.
      if (f === 'command' && (a.command === null || b.command === null)) return false;
      if (f === 'networks') return !same(membershipKey(a), membershipKey(b));
      return !same(a[f], b[f]);
    }),
  );
  const empty = [networks, containers].every((d) => d.added.length + d.removed.length + d.changed.length === 0);
  return { empty, networks, containers };
}

/** One line per change, in plain words, for events and logs. */
export function describeDiff(diff: TopologyDiff): string[] {
  const lines: string[] = [];
  for (const n of diff.networks.added) lines.push(`network ${n.name} created`);
  for (const n of diff.networks.removed) lines.push(`network ${n.name} removed`);
  for (const n of diff.networks.changed) lines.push(`network ${n.name} changed (${n.fields.join(', ')})`);
  for (const c of diff.containers.added) lines.push(`container ${c.name} created (${c.state})`);
  for (const c of diff.containers.removed) lines.push(`container ${c.name} removed`);
  for (const c of diff.containers.changed) lines.push(...describeContainerChange(c));
  return lines;
}

function describeContainerChange(c: Changed<DockerContainer>): string[] {
  const lines: string[] = [];
  if (c.fields.includes('name')) lines.push(`container ${c.before.name} renamed to ${c.after.name}`);
  if (c.fields.includes('state')) lines.push(`container ${c.name} ${c.before.state} → ${c.after.state}`);
  if (c.fields.includes('networks')) {
    const { joined, left } = membershipChange(c.before, c.after);
    if (joined.length > 0) lines.push(`container ${c.name} joined ${joined.join(', ')}`);
    if (left.length > 0) lines.push(`container ${c.name} left ${left.join(', ')}`);
    if (joined.length === 0 && left.length === 0) lines.push(`container ${c.name} network addresses changed`);
  }
  if (c.fields.includes('ports')) lines.push(`container ${c.name} port bindings changed`);
  const rest = c.fields.filter((f) => !['name', 'state', 'networks', 'ports'].includes(f));
  if (rest.length > 0) lines.push(`container ${c.name} changed (${rest.join(', ')})`);
  return lines;
}

export function membershipChange(before: DockerContainer, after: DockerContainer): { joined: string[]; left: string[] } {
  const was = new Set(before.networks.map((m) => m.networkName));
  const is = new Set(after.networks.map((m) => m.networkName));
  return {
    joined: sortedBy([...is].filter((n) => !was.has(n)), (n) => n),
    left: sortedBy([...was].filter((n) => !is.has(n)), (n) => n),
  };
}

/** Old name → new name for every renamed container. */
export function renamesIn(diff: TopologyDiff): Map<string, string> {
  return new Map(diff.containers.changed.filter((c) => c.fields.includes('name')).map((c) => [c.before.name, c.after.name]));
}

function diffById<T extends { id: string; name: string }>(
  before: readonly T[],
  after: readonly T[],
  fieldsOf: (a: T, b: T) => string[],
): { added: T[]; removed: T[]; changed: Changed<T>[] } {
  const old = new Map(before.map((item) => [item.id, item]));
  const now = new Map(after.map((item) => [item.id, item]));
  const key = (item: { id: string; name: string }) => `${item.name} ${item.id}`;
  const added = sortedBy(after.filter((item) => !old.has(item.id)), key);
  const removed = sortedBy(before.filter((item) => !now.has(item.id)), key);
  const changed: Changed<T>[] = [];
  for (const item of after) {
    const previous = old.get(item.id);
    if (previous === undefined) continue;
    const fields = fieldsOf(previous, item);
    if (fields.length > 0) changed.push({ id: item.id, name: item.name, before: previous, after: item, fields });
  }
  return { added, removed, changed: sortedBy(changed, key) };
}

function membershipKey(container: DockerContainer): string {
  return JSON.stringify(sortedBy(container.networks, (m) => m.networkName).map((m) => [m.networkName, m.ipAddress, [...m.aliases].sort()]));
}

/** Structural equality for the plain JSON values a topology holds; object key order does not matter. */
function same(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(sortedBy(Object.entries(v), ([k]) => k))
      : v,
  );
}
