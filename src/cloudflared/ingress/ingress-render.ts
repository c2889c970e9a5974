/**
 * The config file from the route ledger: the rules we do not manage, kept where they were (in their order,
 * byte for byte, with their comments), then the ledger's rules in a deterministic order, then the catch-all.
 * The same document and ledger always render to the same bytes.
 *
 * A rule is *managed* when its hostname + path is in the ledger, or when it carries our marker comment
 * naming that same hostname (and path) — so a rule whose route left the ledger is removed, while a rule a
 * person copied from ours and changed the hostname of is theirs and is kept.
 */
import { Document } from 'yaml';
import { ConfigDocument, type IngressPart, type IngressRuleChunk } from './config-document.ts';
import { isRecord } from './config-values.ts';
import { hostnameMatches } from './ingress-match.ts';
import type { CloudflaredConfig, IngressIssue, IngressRule } from '../../ingress-model.ts';
import { isCatchAllRule, validateCloudflaredConfig } from './ingress-validation.ts';

/** A route from the ledger, as the file needs it. */
export interface LedgerRule {
  hostname: string;
  path?: string | null;
  /** The ingress `service`, e.g. `http://localhost:3100`. */
  service: string;
  /** The project that owns the route. */
  project: string;
  /** Why this target was chosen, in plain words. */
  targetReason?: string | null;
  originRequest?: Record<string, unknown> | null;
}

/** What a managed rule's marker comment starts with. */
export const MANAGED_MARKER = 'tunnel-manager: managed rule for';
const CATCH_ALL_MARKER = 'tunnel-manager: catch-all';

export const DEFAULT_FILE_HEADER =
  '# Written by tunnel-manager. Rules marked "tunnel-manager: managed" are rewritten from its route ledger;\n' +
  '# add your own rules anywhere above the catch-all: they are kept as they are.\n';

export interface RenderedIngress {
  content: string;
  config: CloudflaredConfig;
  /** The managed rules in file order. */
  managed: LedgerRule[];
  /** Indexes (in the rendered file) of the rules we keep but do not manage. */
  unmanagedIndexes: number[];
  /** Managed rules an earlier unmanaged rule answers instead (e.g. a hand-written wildcard above them). */
  shadowed: { hostname: string; path: string | null; byIndex: number }[];
  /** cloudflared's verdict on the rendered file; empty when it would start. */
  issues: IngressIssue[];
}

/** The identity two rules share when they route the same requests: lower-case hostname + path regex. */
export function ruleKey(hostname: string | undefined | null, path: string | undefined | null): string {
  return `${(hostname ?? '').toLowerCase()}\u0000${path ?? ''}`;
}

function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/** The marker line for a rule; it names the rule so a copied-and-edited rule no longer carries a valid one. */
export function managedMarkerFor(hostname: string, path: string | null | undefined): string {
  return `${MANAGED_MARKER} ${oneLine(hostname.toLowerCase())}${path ? ` path ${oneLine(path)}` : ''}`;
}

/** Whether a rule in the file carries our marker for exactly its own hostname and path. */
export function hasOwnManagedMarker(chunk: Pick<IngressRuleChunk, 'commentLines' | 'rule'>): boolean {
  const { hostname, path } = chunk.rule;
  if (typeof hostname !== 'string' || hostname === '') return false;
  const expected = managedMarkerFor(hostname, typeof path === 'string' ? path : null);
  return chunk.commentLines.some((line) => line === expected || line.startsWith(`${expected} ·`));
}

export function isGeneratedCatchAll(chunk: Pick<IngressRuleChunk, 'commentLines'>): boolean {
  return chunk.commentLines.some((line) => line.startsWith(CATCH_ALL_MARKER));
}

function isWildcard(hostname: string): boolean {
  return hostname.startsWith('*.');
}

/** Wildcards after exact hostnames; among wildcards, the one with more labels (narrower) first. */
function byWildcard(a: LedgerRule, b: LedgerRule): number {
  const wildA = isWildcard(a.hostname) ? 1 : 0;
  const wildB = isWildcard(b.hostname) ? 1 : 0;
  if (wildA !== wildB) return wildA - wildB;
  return wildA === 1 ? b.hostname.split('.').length - a.hostname.split('.').length : 0;
}

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Exact hostnames before wildcards (narrower wildcards first), longer paths first, then by hostname and path. */
export function compareLedgerRules(a: LedgerRule, b: LedgerRule): number {
  const pathA = a.path ?? '';
  const pathB = b.path ?? '';
  return (
    byWildcard(a, b) ||
    pathB.length - pathA.length ||
    byText(a.hostname.toLowerCase(), b.hostname.toLowerCase()) ||
    byText(pathA, pathB) ||
    // Same hostname and path twice (never from a sound ledger): still a total order, so output never depends on input order.
    byText(JSON.stringify(sortedKeys(a)), JSON.stringify(sortedKeys(b)))
  );
}

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  return isRecord(value) ? sortedRecord(value) : value;
}

/** The same mapping with its keys in order, all the way down. */
function sortedRecord(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedKeys(value[key])]),
  );
}

function indentBlock(yamlText: string, dashIndent: number, eol: string): string {
  const pad = ' '.repeat(dashIndent);
  const lines = yamlText.replace(/\n$/, '').split('\n');
  return lines.map((line, index) => (index === 0 ? `${pad}- ${line}` : line === '' ? '' : `${pad}  ${line}`)).join(eol) + eol;
}

function ruleYaml(rule: IngressRule): string {
  const doc = new Document(rule);
  return doc.toString({ indent: 2, lineWidth: 0 });
}

/** The rule a managed rule's text holds: hostname in lower case, then path, service and originRequest (keys sorted). */
function managedRule(rule: LedgerRule): IngressRule {
  const ordered: IngressRule = { hostname: rule.hostname.toLowerCase(), ...(rule.path ? { path: rule.path } : {}), service: rule.service };
  if (rule.originRequest && Object.keys(rule.originRequest).length > 0) {
    ordered.originRequest = sortedRecord(rule.originRequest);
  }
  return ordered;
}

/** The comment lines above a managed rule: the marker (with the owner), then the target and why it was chosen. */
function managedCommentLines(rule: LedgerRule): string[] {
  const reason = rule.targetReason ? oneLine(rule.targetReason) : 'no reason recorded';
  return [`${managedMarkerFor(rule.hostname, rule.path)} · owner: project ${oneLine(rule.project)}`, `target ${oneLine(rule.service)}: ${reason}`];
}

/** The text of one managed rule: the marker comment (owner, target, reason), then the rule. */
export function renderManagedChunk(rule: LedgerRule, layout: { dashIndent: number; eol: string }): string {
  const pad = ' '.repeat(layout.dashIndent);
  const comment = managedCommentLines(rule)
    .map((line) => `${pad}# ${line}${layout.eol}`)
    .join('');
  return comment + indentBlock(ruleYaml(managedRule(rule)), layout.dashIndent, layout.eol);
}

/**
 * Each managed rule rendered last time (its text, rule and comment lines), by everything it is made of: a cycle
 * re-renders the whole file for one changed route, and making 1,000 rules through the yaml Document API took 14 ms and
 * 20 MB of garbage; making only their rules and comment lines again still cost about 1.5 MB a cycle. Only the rules of
 * the last render are kept. The documents made from the parts share their rules and comment lines (and freeze them).
 */
let renderedParts = new Map<string, IngressPart>();

function managedPart(rule: LedgerRule, layout: { dashIndent: number; eol: string }, next: Map<string, IngressPart>): IngressPart {
  const key = JSON.stringify([layout.dashIndent, layout.eol, rule.hostname, rule.path ?? null, rule.service, rule.project, rule.targetReason ?? null, rule.originRequest ? sortedKeys(rule.originRequest) : null]);
  const part = renderedParts.get(key) ?? { text: renderManagedChunk(rule, layout), rule: managedRule(rule), commentLines: managedCommentLines(rule) };
  next.set(key, part);
  return part;
}

function catchAllPart(layout: { dashIndent: number; eol: string }): IngressPart {
  const pad = ' '.repeat(layout.dashIndent);
  const comment = `${CATCH_ALL_MARKER}: anything no rule above matches gets a 404`;
  return { text: `${pad}# ${comment}${layout.eol}${pad}- service: http_status:404${layout.eol}`, rule: { service: 'http_status:404' }, commentLines: [comment] };
}

/** Whether `chunk` is one of ours: in the ledger, or marked by us for exactly this hostname and path. */
export function isManagedChunk(chunk: IngressRuleChunk, ledgerKeys: ReadonlySet<string>): boolean {
  const { hostname, path } = chunk.rule;
  if (typeof hostname === 'string' && hostname !== '' && ledgerKeys.has(ruleKey(hostname, typeof path === 'string' ? path : null))) return true;
  return hasOwnManagedMarker(chunk);
}

function findShadowed(rules: IngressRule[], managedIndexes: Map<number, LedgerRule>): RenderedIngress['shadowed'] {
  const shadowed: RenderedIngress['shadowed'] = [];
  for (const [index, rule] of managedIndexes) {
    const host = isWildcard(rule.hostname) ? `shadow-probe${rule.hostname.slice(1)}` : rule.hostname;
    for (let earlier = 0; earlier < index; earlier += 1) {
      const candidate = rules[earlier];
      if (!candidate || managedIndexes.has(earlier)) continue;
      if (candidate.path) continue;
      if (typeof candidate.hostname === 'string' && hostnameMatches(candidate.hostname, host)) {
        shadowed.push({ hostname: rule.hostname, path: rule.path ?? null, byIndex: earlier });
        break;
      }
    }
  }
  return shadowed;
}

/**
 * Renders the file: `document` is the current file (null or empty for none), `ledger` the routes to publish.
 * Duplicate ledger entries (same hostname + path) keep the first after sorting.
 *
 * `retire` names hostnames whose rules must go even though we do not manage them: an adopted route (a record
 * found pointing at the tunnel, served by a hand-written rule) that its owner deletes takes its rules with it.
 * Only rules for exactly that hostname are dropped, never a wildcard that also matches it.
 */
export function renderIngressConfig(document: ConfigDocument | null, ledger: readonly LedgerRule[], retire: readonly string[] = []): RenderedIngress {
  const base = document ?? ConfigDocument.parse('');
  const layout = base.layout;
  const ledgerByKey = new Map<string, LedgerRule>();
  for (const rule of [...ledger].sort(compareLedgerRules)) {
    const key = ruleKey(rule.hostname, rule.path);
    if (!ledgerByKey.has(key)) ledgerByKey.set(key, rule);
  }
  const managed = [...ledgerByKey.values()];
  const ledgerKeys = new Set(ledgerByKey.keys());

  const existing = base.rules();
  const last = existing[existing.length - 1];
  const keepCatchAll = last !== undefined && isCatchAllRule(last.rule) && !isGeneratedCatchAll(last);
  const retired = new Set(retire.map((hostname) => hostname.toLowerCase()));
  const kept = existing.filter((chunk, index) => {
    if (index === existing.length - 1 && isCatchAllRule(chunk.rule)) return false;
    if (typeof chunk.rule.hostname === 'string' && retired.has(chunk.rule.hostname.toLowerCase())) return false;
    return !isManagedChunk(chunk, ledgerKeys);
  });

  const parts: IngressPart[] = [];
  const unmanagedIndexes: number[] = [];
  const managedIndexes = new Map<number, LedgerRule>();
  const keptPart = (chunk: IngressRuleChunk): IngressPart =>
    chunk.text !== '' ? chunk : { ...chunk, text: indentBlock(ruleYaml(chunk.rule), layout.dashIndent, layout.eol) };
  for (const chunk of kept) {
    unmanagedIndexes.push(parts.length);
    parts.push(keptPart(chunk));
  }
  const nextChunks = new Map<string, IngressPart>();
  for (const rule of managed) {
    managedIndexes.set(parts.length, rule);
    parts.push(managedPart(rule, layout, nextChunks));
  }
  if (keepCatchAll && last) {
    unmanagedIndexes.push(parts.length);
    parts.push(keptPart(last));
  } else {
    parts.push(catchAllPart(layout));
  }

  renderedParts = nextChunks;
  // The new document is made from its parts, not parsed from the text just made (ConfigDocument.withIngress).
  const rendered = base.withIngress(parts, DEFAULT_FILE_HEADER);
  const content = rendered.source;
  const config = rendered.view();
  return {
    content,
    config,
    managed,
    unmanagedIndexes,
    shadowed: findShadowed(config.ingress, managedIndexes),
    issues: validateCloudflaredConfig(config),
  };
}

/** The ledger rule a managed rule in a file stands for (used to adopt a hand edit). */
export function ledgerRuleFromChunk(chunk: IngressRuleChunk, project: string, targetReason: string): LedgerRule {
  const { hostname, path, service, originRequest } = chunk.rule;
  const rule: LedgerRule = { hostname: String(hostname ?? ''), service: String(service ?? ''), project, targetReason };
  if (typeof path === 'string' && path !== '') rule.path = path;
  if (originRequest && typeof originRequest === 'object' && Object.keys(originRequest).length > 0) rule.originRequest = originRequest;
  return rule;
}

/** A managed rule as config.yml holds it: what the ledger needs to take a route back after losing its row. */
export interface ManagedRuleOnDisk {
  service: string;
  path: string | null;
  originRequest: Record<string, unknown> | null;
}

/**
 * The rules of a config.yml that carry our marker for their own hostname (hostname → rule). A file that does not
 * parse yields none: recovery then falls back to plain adoption rather than guessing.
 */
export function managedRulesIn(text: string | null): Map<string, ManagedRuleOnDisk> {
  const rules = new Map<string, ManagedRuleOnDisk>();
  if (text === null) return rules;
  let document: ConfigDocument;
  try {
    document = ConfigDocument.parse(text);
  } catch {
    return rules;
  }
  for (const chunk of document.rules()) {
    const { hostname, service, path, originRequest } = chunk.rule;
    if (typeof hostname !== 'string' || typeof service !== 'string' || !hasOwnManagedMarker(chunk)) continue;
    rules.set(hostname.toLowerCase(), { service, path: typeof path === 'string' ? path : null, originRequest: isRecord(originRequest) ? originRequest : null });
  }
  return rules;
}
