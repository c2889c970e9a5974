/**
 * The git commit message of a config.yml version, from what the version changes: the rules added, removed and
 * changed (by hostname and path) with the project that owns each (from our marker comment; a rule without one is
 * hand-written), read by comparing the new file with the version before it. A batch or a hand edit is named rule by
 * rule, not "4 changes" or "file-edited *": `git log` alone says which names and projects each version touched.
 */
import type { CloudflaredConfig, IngressRule } from '../../ingress-model.ts';
import { ConfigDocument } from './config-document.ts';
import { canonicalJson } from './config-values.ts';
import { ruleKey, type LedgerRule } from './ingress-render.ts';

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

/**
 * What a version holds, as the message compares it: its rules by identity (hostname + path) with their owners, and
 * its other settings. Plain data: the ingress service keeps the one of the version it last wrote.
 */
export interface VersionSummary {
  rules: Record<string, RuleView>;
  settings: Record<string, string>;
}

export const EMPTY_SUMMARY: VersionSummary = Object.freeze({ rules: {}, settings: {} });

function viewOf(rule: IngressRule, project: string | null): RuleView {
  const { hostname, path, service, originRequest } = rule;
  const host = typeof hostname === 'string' && hostname !== '' ? hostname.toLowerCase() : 'catch-all';
  return {
    name: typeof path === 'string' && path !== '' ? `${host} path ${path}` : host,
    project,
    service: String(service),
    key: canonicalJson({ service, originRequest: originRequest ?? null }),
  };
}

const keyOfRule = (rule: IngressRule): string => ruleKey(typeof rule.hostname === 'string' ? rule.hostname : null, typeof rule.path === 'string' ? rule.path : null);

function settingsOf(config: CloudflaredConfig): Record<string, string> {
  const { ingress: _rules, extra, ...known } = config;
  return Object.fromEntries(Object.entries({ ...extra, ...known }).map(([key, value]) => [key, canonicalJson(value ?? null)]));
}

function summaryOf(config: CloudflaredConfig, projectOf: (rule: IngressRule, index: number) => string | null): VersionSummary {
  const rules: Record<string, RuleView> = {};
  config.ingress.forEach((rule, index) => {
    const key = keyOfRule(rule);
    // The first of two rules with one identity is the one cloudflared uses.
    if (!(key in rules)) rules[key] = viewOf(rule, projectOf(rule, index));
  });
  return { rules, settings: settingsOf(config) };
}

/** A version from its text (its owners from our marker comments); the empty summary when there is none or it does not parse. */
export function summarizeText(text: string | null): VersionSummary {
  if (text === null) return EMPTY_SUMMARY;
  try {
    const document = ConfigDocument.parse(text);
    const chunks = document.rules();
    return summaryOf(document.view(), (_rule, index) => chunks[index]?.commentLines.map((line) => OWNER.exec(line)?.[1]).find((found) => found !== undefined) ?? null);
  } catch {
    return EMPTY_SUMMARY;
  }
}

/** A rendered version, from what the render already knows (no parsing): the managed rules' owners are the ledger's. */
export function summarizeRendered(config: CloudflaredConfig, managed: readonly LedgerRule[]): VersionSummary {
  const owners = new Map(managed.map((rule) => [ruleKey(rule.hostname, rule.path ?? null), rule.project]));
  return summaryOf(config, (rule) => owners.get(keyOfRule(rule)) ?? null);
}

/** The top-level settings (everything but the rules) whose value differs between two versions. */
export function settingsChanged(before: VersionSummary, after: VersionSummary): string[] {
  return [...new Set([...Object.keys(before.settings), ...Object.keys(after.settings)])].filter((key) => before.settings[key] !== after.settings[key]).sort();
}

/** What `after` changes in the ingress rules of `before`, in the new version's order, then the rules it removes. */
export function ruleChanges(before: VersionSummary, after: VersionSummary): RuleChange[] {
  const changes: RuleChange[] = [];
  for (const [key, rule] of Object.entries(after.rules)) {
    const was = before.rules[key];
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
  for (const [key, rule] of Object.entries(before.rules)) {
    if (!(key in after.rules)) changes.push({ kind: 'remove', name: rule.name, project: rule.project, before: rule.service, after: null });
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
export function commitMessage(before: VersionSummary, after: VersionSummary, options: { label?: string | null; why?: string | null } = {}): string {
  const changes = ruleChanges(before, after);
  // A first version (nothing before it) names its rules; its settings are not changes.
  const settings = Object.keys(before.rules).length === 0 && Object.keys(before.settings).length === 0 ? [] : settingsChanged(before, after);
  const [only] = changes;
  const single = changes.length === 1 && only !== undefined ? describeRuleChange(only) : null;
  const rules = changes.length === 0 ? null : rulesPart(changes, single);
  const summary = [rules, settings.length > 0 ? `settings ${settings.join(', ')} changed` : null].filter((part) => part !== null).join('; ') || 'no ingress rule changed';
  const subject = `ingress: ${options.label ? `${options.label}: ` : ''}${summary}`;
  const body = changes.length > 1 || (single !== null && single !== summary) ? changes.map((change) => `- ${describeRuleChange(change)}`) : [];
  return withBody(subject, body, options.why);
}

/** The subject, then the body lines, then `Why: …` (a blank line between the parts that are there). */
function withBody(subject: string, body: readonly string[], why: string | null | undefined): string {
  const whyLines = why ? [`Why: ${why}`] : [];
  const rest = [...body, ...(body.length > 0 && whyLines.length > 0 ? [''] : []), ...whyLines];
  return rest.length === 0 ? subject : `${subject}\n\n${rest.join('\n')}`;
}

/** The subject's rule part: the one change in full, else the changes listed, else counted, whichever fits first. */
function rulesPart(changes: readonly RuleChange[], single: string | null): string {
  if (single !== null && single.length <= SUBJECT_LIMIT) return single;
  const list = listed(changes);
  return list.length <= SUBJECT_LIMIT ? list : counted(changes);
}
