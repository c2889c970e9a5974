/**
 * The git commit message of a config.yml version, from what the version changes: the rules added, removed and
 * changed (by hostname and path) with the project that owns each (from our marker comment; a rule without one is
 * hand-written), read by comparing the new file with the version before it. A batch or a hand edit is named rule by
 * rule, not "4 changes" or "file-edited *": `git log` alone says which names and projects each version touched.
 */
import { canonicalJson } from './ingress-drift.ts';
import { ConfigDocument, type IngressRuleChunk } from './config-document.ts';
import { ruleKey } from './ingress-render.ts';

export interface RuleChange {
  kind: 'add' | 'remove' | 'change';
  /** The hostname, `catch-all` for the rule without one; with ` path P` when the rule has a path. */
  name: string;
  /** The owning project, from the managed marker; null for a hand-written rule. */
  project: string | null;
  /** The project before, when a change moved the rule from one owner to another. */
  projectBefore?: string | null;
  /** The service before and after (after only for an add, before only for a remove). */
  before: string | null;
  after: string | null;
}

/** The longest subject before hostnames are counted rather than listed (the body always lists every one). */
const SUBJECT_LIMIT = 160;

const OWNER = / · owner: project (\S+)/;

interface RuleView {
  name: string;
  project: string | null;
  service: string;
  /** Everything cloudflared reads of the rule, to tell a change from a rewrite of its comments. */
  key: string;
}

function viewOf(chunk: IngressRuleChunk): RuleView {
  const { hostname, path, service, originRequest } = chunk.rule;
  const host = typeof hostname === 'string' && hostname !== '' ? hostname.toLowerCase() : 'catch-all';
  const project = chunk.commentLines.map((line) => OWNER.exec(line)?.[1]).find((owner) => owner !== undefined) ?? null;
  return {
    name: typeof path === 'string' && path !== '' ? `${host} path ${path}` : host,
    project,
    service: String(service),
    key: canonicalJson({ service, originRequest: originRequest ?? null }),
  };
}

/** The rules of a file by identity (hostname + path), or null when the text does not parse. */
function rulesOf(text: string | null): Map<string, RuleView> | null {
  if (text === null) return new Map();
  try {
    const rules = new Map<string, RuleView>();
    for (const chunk of ConfigDocument.parse(text).rules()) {
      const { hostname, path } = chunk.rule;
      const key = ruleKey(typeof hostname === 'string' ? hostname : null, typeof path === 'string' ? path : null);
      if (!rules.has(key)) rules.set(key, viewOf(chunk));
    }
    return rules;
  } catch {
    return null;
  }
}

/** The top-level settings (everything but the rules) whose value differs between two files (none for a first version). */
export function settingsChanged(before: string | null, after: string): string[] {
  if (before === null) return [];
  const settings = (text: string | null): Record<string, unknown> => {
    if (text === null) return {};
    try {
      const { ingress: _rules, extra, ...known } = ConfigDocument.parse(text).model();
      return { ...extra, ...known };
    } catch {
      return {};
    }
  };
  const old = settings(before);
  const now = settings(after);
  return [...new Set([...Object.keys(old), ...Object.keys(now)])].filter((key) => canonicalJson(old[key] ?? null) !== canonicalJson(now[key] ?? null)).sort();
}

/** What `after` changes in the ingress rules of `before` (null: no earlier version), in the new file's order. */
export function ruleChanges(before: string | null, after: string): RuleChange[] {
  const old = rulesOf(before) ?? new Map<string, RuleView>();
  const now = rulesOf(after) ?? new Map<string, RuleView>();
  const changes: RuleChange[] = [];
  for (const [key, rule] of now) {
    const was = old.get(key);
    if (was === undefined) changes.push({ kind: 'add', name: rule.name, project: rule.project, before: null, after: rule.service });
    else if (was.key !== rule.key || was.project !== rule.project) {
      changes.push({
        kind: 'change',
        name: rule.name,
        project: rule.project,
        ...(was.project !== rule.project ? { projectBefore: was.project } : {}),
        before: was.service,
        after: rule.service,
      });
    }
  }
  for (const [key, rule] of old) {
    if (!now.has(key)) changes.push({ kind: 'remove', name: rule.name, project: rule.project, before: rule.service, after: null });
  }
  return changes;
}

const owner = (project: string | null | undefined): string => (project ? `project ${project}` : 'hand-written');

/** One change in full: `add app.153.se (project consilio → http://localhost:3100)`. */
export function describeRuleChange(change: RuleChange): string {
  if (change.kind === 'add') return `add ${change.name} (${owner(change.project)} → ${change.after})`;
  if (change.kind === 'remove') return `remove ${change.name} (${owner(change.project)}, was ${change.before})`;
  const who = change.projectBefore !== undefined ? `${owner(change.projectBefore)} → ${owner(change.project)}` : owner(change.project);
  const what = change.before === change.after ? `${change.after}, options changed` : `${change.before} → ${change.after}`;
  return `change ${change.name} (${who}: ${what})`;
}

/** `add a.153.se, b.153.se (project consilio), c.153.se (hand-written)`: each action once, names grouped by owner. */
function listed(changes: readonly RuleChange[]): string {
  const parts: string[] = [];
  for (const kind of ['add', 'change', 'remove'] as const) {
    const ofKind = changes.filter((change) => change.kind === kind);
    if (ofKind.length === 0) continue;
    const byOwner = new Map<string, string[]>();
    for (const change of ofKind) byOwner.set(owner(change.project), [...(byOwner.get(owner(change.project)) ?? []), change.name]);
    parts.push(`${kind} ${[...byOwner].map(([who, names]) => `${names.join(', ')} (${who})`).join(', ')}`);
  }
  return parts.join('; ');
}

/** `add 20 rules (app0.example.com, app1.example.com, …; project alpha, project beta)` when the list is too long. */
function counted(changes: readonly RuleChange[]): string {
  const parts: string[] = [];
  for (const kind of ['add', 'change', 'remove'] as const) {
    const ofKind = changes.filter((change) => change.kind === kind);
    if (ofKind.length === 0) continue;
    const owners = [...new Set(ofKind.map((change) => owner(change.project)))];
    const names = ofKind.slice(0, 2).map((change) => change.name);
    parts.push(`${kind} ${ofKind.length} rule${ofKind.length === 1 ? '' : 's'} (${names.join(', ')}${ofKind.length > 2 ? ', …' : ''}; ${owners.join(', ')})`);
  }
  return parts.join('; ');
}

/**
 * The message: a subject naming each hostname and project the version changes (counted, with the first names and
 * every project, when they do not fit in one line), then one body line per change, then `why` when one is given.
 * `label` says what kind of version it is when it is not a plain change ("restore last good version …").
 */
export function commitMessage(before: string | null, after: string, options: { label?: string | null; why?: string | null } = {}): string {
  const changes = ruleChanges(before, after);
  const settings = settingsChanged(before, after);
  const single = changes.length === 1 ? describeRuleChange(changes[0] as RuleChange) : null;
  const rules =
    changes.length === 0 ? null : single !== null && single.length <= SUBJECT_LIMIT ? single : listed(changes).length <= SUBJECT_LIMIT ? listed(changes) : counted(changes);
  const summary = [rules, settings.length > 0 ? `settings ${settings.join(', ')} changed` : null].filter((part) => part !== null).join('; ') || 'no ingress rule changed';
  const subject = `ingress: ${options.label ? `${options.label}: ` : ''}${summary}`;
  const body = changes.length > 1 || (single !== null && single !== summary) ? changes.map((change) => `- ${describeRuleChange(change)}`) : [];
  const why = options.why ? [`Why: ${options.why}`] : [];
  const rest = [...body, ...(body.length > 0 && why.length > 0 ? [''] : []), ...why];
  return rest.length === 0 ? subject : `${subject}\n\n${rest.join('\n')}`;
}
