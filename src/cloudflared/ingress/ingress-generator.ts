/**
 * The generator: route ledger + the hand-written part of config.yml → the bytes of the next version, validated as
 * cloudflared would. Pure: it reads no file and writes none (the loader does, ingress-loader.ts), and reports nothing
 * (what is worth reporting comes back as data, see ingress-drift-check.ts).
 */
import { TunnelManagerError } from '../../errors.ts';
import type { IngressIssue } from '../../ingress-model.ts';
import { summarizeRendered, type VersionSummary } from './config-commit-message.ts';
import { ConfigDocument } from './config-document.ts';
import { DEFAULT_FILE_HEADER, renderIngressConfig, type LedgerRule, type RenderedIngress } from './ingress-render.ts';
import { formatIngressIssues, validateConfigText } from './ingress-validation.ts';

export { validateConfigText };

/** A generated version, ready for the loader to save. */
export interface GeneratedConfig {
  content: string;
  /** What the version holds, as its commit message compares it (known here without parsing the bytes again). */
  summary: VersionSummary;
  /** The parsed model of `content` (the shadow report names the hand-written rule by it). */
  config: RenderedIngress['config'];
  shadowed: RenderedIngress['shadowed'];
  managedCount: number;
}

/** What a brand-new file starts with (cloudflared also takes these from its command line). */
export interface NewFileSettings {
  tunnel?: string;
  credentialsFile?: string;
}

/** One reason for a new version (the same shape as the machine's IngressChange). */
export interface IngressChangeNote {
  hostname: string;
  action: string;
  project: string;
  target?: string | null;
}

export function invalidConfig(where: string, issues: IngressIssue[]): TunnelManagerError {
  const first = issues[0];
  return new TunnelManagerError({
    code: 'INGRESS_INVALID',
    message: `${where} would be refused by cloudflared: ${formatIngressIssues(issues)}`,
    fix: first ? first.fix : 'Fix the ingress rules named above.',
    details: { issues },
  });
}

/** The hand-written part of a file that does not exist yet: the header and the tunnel's own settings. */
export function newFileBase(settings: NewFileSettings): ConfigDocument {
  const lines = [DEFAULT_FILE_HEADER.trimEnd()];
  if (settings.tunnel) lines.push(`tunnel: ${settings.tunnel}`);
  if (settings.credentialsFile) lines.push(`credentials-file: ${settings.credentialsFile}`);
  return ConfigDocument.parse(`${lines.join('\n')}\n`);
}

/** The hand-written part the next version keeps: the file on disk, else the version last written, else a new file's. */
export function baseDocument(onDisk: ConfigDocument | null, lastWritten: string | null, settings: NewFileSettings): ConfigDocument {
  if (onDisk !== null) return onDisk;
  return lastWritten !== null ? ConfigDocument.parse(lastWritten) : newFileBase(settings);
}

/**
 * Renders `ledger` into `base` (dropping the hand-written rules of the `retire` hostnames: see renderIngressConfig).
 * Throws INGRESS_INVALID, naming `where`, when cloudflared would refuse the result.
 */
export function generateConfig(base: ConfigDocument, ledger: readonly LedgerRule[], retire: readonly string[] = [], where = 'The rendered config'): GeneratedConfig {
  const rendered = renderIngressConfig(base, ledger, retire);
  if (rendered.issues.length > 0) throw invalidConfig(where, rendered.issues);
  return {
    content: rendered.content,
    summary: summarizeRendered(rendered.config, rendered.managed),
    config: rendered.config,
    shadowed: rendered.shadowed,
    managedCount: rendered.managed.length,
  };
}

/**
 * What kind of version the notes ask for, when it is not a plain route change (those the commit message reads from
 * the file itself, see config-commit-message.ts): a hand edit kept, or a re-render from the ledger.
 */
export function commitLabelFor(changes: readonly IngressChangeNote[]): string | null {
  const labels = new Set<string>();
  for (const change of changes) {
    if (change.action === 'file-edited') labels.add('hand edit of config.yml');
    else if (change.action === 'resync') labels.add('re-render from the route ledger');
  }
  return labels.size === 0 ? null : [...labels].join(' and ');
}
