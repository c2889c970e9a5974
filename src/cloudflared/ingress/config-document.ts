/**
 * cloudflared's config.yml as a document we can change without disturbing what we do not own.
 *
 * The `yaml` Document API parses the file and tells where each ingress rule sits in the text. The ingress
 * block is cut into one *chunk* per rule: the blank lines and comments above the rule plus the rule itself
 * (with its inline and trailing comments), byte for byte. Rendering replaces the block with a new list of
 * chunks (kept ones verbatim, generated ones fresh); everything outside the block is never re-serialized.
 * So an unchanged document serializes to exactly its source, and unmanaged rules keep every byte.
 */
import { isMap, isNode, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { TunnelManagerError } from '../../errors.ts';
import type { CloudflaredConfig, IngressRule } from '../../ingress-model.ts';
import { canonicalJson, isRecord } from './config-values.ts';

/** One ingress rule as it stands in the file. */
export interface IngressRuleChunk {
  /** Position in the ingress list (0-based). */
  index: number;
  rule: IngressRule;
  /** The comment lines above the rule (without `#` and leading space), in order. */
  commentLines: string[];
  /** The rule's text: comments and blank lines above it, then the item itself; always verbatim. */
  text: string;
}

/** One rule of a new ingress block: its full text (as `IngressRuleChunk.text`), the rule and the comment lines that text holds. */
export type IngressPart = Pick<IngressRuleChunk, 'text' | 'rule' | 'commentLines'>;

/** How the ingress list is laid out, so generated rules look like the ones around them. */
export interface IngressLayout {
  /** Spaces before `-`. */
  dashIndent: number;
  eol: '\n' | '\r\n';
}

interface SplicePlan {
  /** Everything before the first chunk (up to and including the `ingress:` line). */
  before: string;
  /** Everything after the last chunk. */
  after: string;
}

function lineStartBefore(text: string, position: number): number {
  return text.lastIndexOf('\n', position - 1) + 1;
}

function lineEndAfter(text: string, position: number): number {
  if (position > 0 && text[position - 1] === '\n') return position;
  const newline = text.indexOf('\n', position);
  return newline === -1 ? text.length : newline + 1;
}

/**
 * Where a list item's text ends: after the line of its last content or of its own (more indented) trailing comments.
 * yaml's range for an item whose value ends with an indented comment runs on to the next item's dash, across the
 * comments and blank lines before it: those lead into the next item (its head, where a marker comment is read), and
 * an end inside the next item's indentation would cut that item's first line in two.
 */
function itemEnd(source: string, range: [number, number, number], leadsIntoNext: RegExp): number {
  const lineStart = lineStartBefore(source, range[2]);
  let end = /^[ \t]*$/.test(source.slice(lineStart, range[2])) ? lineStart : lineEndAfter(source, range[2]);
  const contentEnd = lineEndAfter(source, range[1]);
  while (end > contentEnd) {
    const previous = lineStartBefore(source, end - 1);
    if (!leadsIntoNext.test(source.slice(previous, end))) break;
    end = previous;
  }
  return end;
}

/** A blank line, or a comment no more indented than the list's dashes: it leads into the next item (see itemEnd). */
function leadingLinePattern(dashIndent: number): RegExp {
  return new RegExp(`^(?:[ \\t]*\\r?\\n?|[ ]{0,${dashIndent}}#.*\\r?\\n?)$`);
}

function commentLinesOf(chunkHead: string): string[] {
  return chunkHead
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.startsWith('#'))
    .map((line) => line.replace(/^#\s?/, ''));
}

/**
 * Whether a list item is a rule mapping. Only the mapping is checked here: its fields keep the values YAML gave,
 * whatever their type, because validateIngressRules is the one place that reports a wrong type with its fix, and
 * every reader runs it before a rule is used (the writer, the drift check, the stand-in, the reload).
 */
function isRuleMapping(value: unknown): value is IngressRule {
  return isRecord(value);
}

/** A list item as a rule; a scalar where a rule should be becomes a rule without a service, which validation names. */
function toRule(value: unknown): IngressRule {
  if (isRuleMapping(value)) return value;
  return { service: typeof value === 'string' ? value : '' };
}

function toPlain(doc: Document): Record<string, unknown> {
  const plain: unknown = doc.toJS();
  return isRecord(plain) ? plain : {};
}

function describeYamlErrors(doc: Document): string {
  return doc.errors.map((error) => `${error.linePos?.[0] ? `line ${error.linePos[0].line}: ` : ''}${error.message.split('\n')[0]}`).join('; ');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/**
 * The documents parsed last, by their exact text. One ingress cycle reads the same text several times (the drift
 * check, the render and its check, validation, the commit's did-anything-change, the reload), and at 1,000 rules one
 * parse makes about 40 MB of garbage and takes 40 ms: docs/performance.md, Memory with use. Documents are immutable.
 */
const RECENT_DOCUMENTS = 2;
const recent: ConfigDocument[] = [];

/** The document of exactly this text among the last ones parsed or made, if any. */
function remembered(source: string): ConfigDocument | undefined {
  return recent.find((document) => document.source === source);
}

function remember(document: ConfigDocument): ConfigDocument {
  recent.unshift(document);
  recent.length = Math.min(recent.length, RECENT_DOCUMENTS);
  return document;
}

/** Whether the document uses YAML aliases (`*name`): a rule's value may then come from another part of the file. */
function hasAliases(doc: Document): boolean {
  let found = false;
  visit(doc, {
    Alias: () => {
      found = true;
      return visit.BREAK;
    },
  });
  return found;
}

/** The typed model of a file's plain data, sharing its values. */
function modelOf(raw: Record<string, unknown>): CloudflaredConfig {
  const { tunnel, 'credentials-file': credentialsFile, originRequest, ingress, ...extra } = raw;
  const config: CloudflaredConfig = { ingress: Array.isArray(ingress) ? ingress.map(toRule) : [], extra };
  // A value of another type than the model's stays under its key in `extra` (validation reads originRequest there too).
  if (typeof tunnel === 'string') config.tunnel = tunnel;
  else if (tunnel !== undefined) extra.tunnel = tunnel;
  if (typeof credentialsFile === 'string') config['credentials-file'] = credentialsFile;
  else if (credentialsFile !== undefined) extra['credentials-file'] = credentialsFile;
  if (isRecord(originRequest)) config.originRequest = originRequest;
  else if (originRequest !== undefined) extra.originRequest = originRequest;
  return config;
}

/** Each frozen rule's canonical text (a rule shared by two versions is keyed once). */
const ruleKeys = new WeakMap<IngressRule, string>();

function ruleSemanticKey(rule: IngressRule): string {
  const known = ruleKeys.get(rule);
  if (known !== undefined) return known;
  const key = canonicalJson(rule);
  if (Object.isFrozen(rule)) ruleKeys.set(rule, key);
  return key;
}

/** Parses the text as YAML whose top level is a mapping; throws INGRESS_INVALID naming the line otherwise. */
function parseMapping(source: string, where: string): Document {
  const doc = parseDocument(source, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new TunnelManagerError({
      code: 'INGRESS_INVALID',
      message: `${where} is not valid YAML: ${describeYamlErrors(doc)}`,
      fix: `Fix the YAML at the line named (indentation, quotes, duplicate keys) in ${where}, or restore a good version with \`tunnel-manager config history\` and \`tunnel-manager config rollback <commit>\`.`,
      details: { file: where, errors: doc.errors.map((error) => error.message) },
    });
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new TunnelManagerError({
      code: 'INGRESS_INVALID',
      message: `${where} must be a mapping of keys (tunnel, credentials-file, ingress, …), not a ${isSeq(doc.contents) ? 'list' : 'single value'}.`,
      fix: `Rewrite ${where} as \`key: value\` lines with an \`ingress:\` list, or restore a good version with \`tunnel-manager config rollback <commit>\`.`,
      details: { file: where },
    });
  }
  return doc;
}

/** The `ingress:` list when it is a non-empty block list we can splice into: its items and where its key ends. */
function ingressBlock(doc: Document): { items: readonly unknown[]; keyEnd: number } | null {
  if (!isMap(doc.contents)) return null;
  const pair = doc.contents.items.find((item) => isScalar(item.key) && item.key.value === 'ingress');
  const seq = pair?.value;
  if (!pair || !isSeq(seq) || seq.flow === true || seq.items.length === 0) return null;
  const keyRange = isScalar(pair.key) ? pair.key.range : null;
  return keyRange ? { items: seq.items, keyEnd: keyRange[1] } : null;
}

/** Cuts the block list into one chunk per rule, each with the blank lines and comments that lead into it. */
function chunksOf(source: string, items: readonly unknown[], blockStart: number): { chunks: IngressRuleChunk[]; dashIndent: number; end: number } {
  const chunks: IngressRuleChunk[] = [];
  let cursor = blockStart;
  let dashIndent = 2;
  let leadsIntoNext = leadingLinePattern(dashIndent);
  items.forEach((item, index) => {
    const range = isNode(item) ? item.range : null;
    if (!isNode(item) || !range) throw new Error('yaml node without a source range');
    const itemLineStart = lineStartBefore(source, range[0]);
    if (index === 0) {
      dashIndent = (/^ */.exec(source.slice(itemLineStart)) ?? [''])[0].length;
      leadsIntoNext = leadingLinePattern(dashIndent);
    }
    const end = itemEnd(source, range, leadsIntoNext);
    const text = source.slice(cursor, end);
    const rule = toRule(item.toJSON());
    chunks.push({ index, rule, commentLines: commentLinesOf(source.slice(cursor, itemLineStart)), text });
    cursor = end;
  });
  return { chunks, dashIndent, end: cursor };
}

export class ConfigDocument {
  /** The file as plain data (yaml's toJS), frozen: model() hands out copies. */
  private readonly raw: Record<string, unknown>;
  private modelView: CloudflaredConfig | undefined;

  private constructor(
    /** The exact text this document was parsed from. */
    readonly source: string,
    /** Kept only when the file has no block-style ingress list to splice into (withIngressChunks needs it then). */
    private readonly doc: Document | null,
    private readonly chunks: IngressRuleChunk[],
    private readonly plan: SplicePlan | null,
    readonly layout: IngressLayout,
    raw: Record<string, unknown>,
    /** Whether the text uses YAML aliases: withIngress then parses the new text instead of assembling it. */
    private readonly aliases: boolean,
  ) {
    this.raw = deepFreeze(raw);
    for (const chunk of chunks) deepFreeze(chunk);
  }

  /** Parses a config file's text; throws INGRESS_INVALID naming the line when it is not YAML cloudflared could read. */
  static parse(source: string, where = 'config.yml'): ConfigDocument {
    const known = remembered(source);
    if (known) return known;
    return remember(ConfigDocument.parseText(source, where));
  }

  /** Parses without looking at the documents parsed last (for tests that compare an assembled document with its text). */
  static parseFresh(source: string, where = 'config.yml'): ConfigDocument {
    return ConfigDocument.parseText(source, where);
  }

  private static parseText(source: string, where: string): ConfigDocument {
    const eol: IngressLayout['eol'] = source.includes('\r\n') ? '\r\n' : '\n';
    if (source.trim() === '') return new ConfigDocument(source, null, [], null, { dashIndent: 2, eol }, {}, false);
    const doc = parseMapping(source, where);
    const block = ingressBlock(doc);
    if (!block) {
      const plain = toPlain(doc);
      const rules = Array.isArray(plain.ingress) ? plain.ingress.map(toRule) : [];
      const chunks = rules.map((rule, index) => ({ index, rule, commentLines: [], text: '' }));
      return new ConfigDocument(source, doc, chunks, null, { dashIndent: 2, eol }, plain, hasAliases(doc));
    }
    const blockStart = lineEndAfter(source, block.keyEnd);
    const { chunks, dashIndent, end } = chunksOf(source, block.items, blockStart);
    const plan = { before: source.slice(0, blockStart), after: source.slice(end) };
    return new ConfigDocument(source, null, chunks, plan, { dashIndent, eol }, toPlain(doc), hasAliases(doc));
  }

  /** The rules in file order, with their comments and text. */
  rules(): readonly IngressRuleChunk[] {
    return this.chunks;
  }

  /** The file as the typed model (every key we do not model lands in `extra`): a copy the caller may change. */
  model(): CloudflaredConfig {
    return structuredClone(this.view());
  }

  /**
   * The same model, sharing the document's frozen values instead of copying them: for reading. The rules of unchanged
   * managed rules are the same objects from one rendered version to the next (see renderIngressConfig), so what is
   * known about a rule (its validation, its semantic key) is known again without a pass over its fields.
   */
  view(): CloudflaredConfig {
    this.modelView ??= modelOf(this.raw);
    return this.modelView;
  }

  /**
   * What cloudflared would see of this file, as text: equal for two files exactly when their models are (comments,
   * layout and key order aside). Each rule's part is computed once per rule object.
   */
  semanticKey(): string {
    const { ingress, ...rest } = this.view();
    return [canonicalJson(rest), ...ingress.map(ruleSemanticKey)].join('\n');
  }

  /** The exact source text: parse → serialize round-trips byte for byte. */
  toString(): string {
    return this.source;
  }

  /**
   * The document whose text is `withIngressChunks(parts' texts, header)`, made from its parts instead of parsed: the
   * text outside the ingress block is this document's, and each part says which rule its text holds (the renderer
   * made the text from the rule, or took all three from a parsed document). Parsing the 1,000-rule text the renderer had
   * just made cost about 20 MB of garbage a route change, most of the peak with use (docs/performance.md, Memory with
   * use). A file without a block-style ingress list, or one with YAML aliases (a kept rule could take a value from a
   * rule that goes), is parsed as before. The document is remembered as a parsed one is, so reading its text again
   * (validation, the commit, the next drift check) parses nothing.
   */
  withIngress(parts: readonly IngressPart[], header = ''): ConfigDocument {
    const source = this.withIngressChunks(
      parts.map((part) => part.text),
      header,
    );
    const known = remembered(source);
    if (known) return known;
    if (this.plan === null || this.aliases || parts.length === 0) return ConfigDocument.parse(source);
    const eol = this.layout.eol;
    const chunks = parts.map((part, index) => {
      const text = index < parts.length - 1 && !part.text.endsWith('\n') ? part.text + eol : part.text;
      return { index, rule: part.rule, commentLines: part.commentLines, text };
    });
    const raw = { ...this.raw, ingress: parts.map((part) => part.rule) };
    return remember(new ConfigDocument(source, null, chunks, this.plan, this.layout, raw, false));
  }

  /**
   * The file with its ingress block replaced by `chunks` (each a rule's full text, as `IngressRuleChunk.text`
   * or as generated by the renderer). Text outside the ingress block is kept byte for byte. A file without
   * a block-style ingress list gets one: any flow-style `ingress:` is removed and a block list appended.
   */
  withIngressChunks(chunks: readonly string[], header = ''): string {
    const eol = this.layout.eol;
    const body = chunks
      .map((chunk, index) => (index < chunks.length - 1 && !chunk.endsWith('\n') ? chunk + eol : chunk))
      .join('');
    if (this.plan) return this.plan.before + body + this.plan.after;
    let rest = '';
    if (this.doc) {
      if (this.doc.has('ingress')) {
        const copy = this.doc.clone();
        copy.delete('ingress');
        rest = copy.toString();
      } else {
        rest = this.source;
      }
      if (rest.trim() === '' || rest.trim() === '{}') rest = '';
    } else {
      rest = this.source.trim() === '' ? '' : this.source;
    }
    if (rest === '') rest = header;
    if (rest !== '' && !rest.endsWith('\n')) rest += eol;
    const gap = rest === '' ? '' : eol;
    return `${rest}${gap}ingress:${eol}${body}`;
  }
}
