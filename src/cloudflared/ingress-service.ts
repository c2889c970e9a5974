/**
 * The effects of the ingress machine, as one object: render (drift check + render + validate), write
 * (atomic write + git commit, the commit running during the reload when one follows: takeCommit collects it),
 * markGood, restoreLastGood and rollbackTo. Reloading cloudflared is not here:
 * it is injected into the machine separately (a replica restart, from the process drivers).
 *
 * Only the ingress machine calls these, one at a time, so the file has exactly one writer.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeFailure } from '../../machines/ingress.machine.ts';
import { TunnelManagerError } from '../errors.ts';
import { ConfigDocument } from './config-document.ts';
import { writeFileAtomically } from './config-file-writer.ts';
import { ConfigGit, type ConfigVersion } from './config-git.ts';
import { commitMessage, summarizeRendered, summarizeText, type VersionSummary } from './config-commit-message.ts';
import { canonicalJson, ConfigFileWatcher, detectDrift, type DriftPolicy, type DriftReport, type ManagedRuleEdit } from './ingress-drift.ts';
import type { IngressIssue } from '../ingress-model.ts';
import { DEFAULT_FILE_HEADER, renderIngressConfig, ruleKey, type LedgerRule, type RenderedIngress } from './ingress-render.ts';
import { describeRule, formatIngressIssues, validateConfigText } from './ingress-validation.ts';

export { validateConfigText };

/** One reason for a new version (the same shape as the machine's IngressChange). */
export interface IngressChangeNote {
  hostname: string;
  action: string;
  project: string;
  target?: string | null;
}

/** Where drift and restore reports go: the lead wires these to the events table and the audit log. */
export interface IngressReporter {
  event(event: { kind: string; project: string; data: Record<string, unknown> }): void;
  audit(entry: { action: string; target: string | null; outcome: 'ok' | 'error'; errorCode: string | null; details: Record<string, unknown> }): void;
}

/** A hand edit of a managed rule taken into the ledger (policy `adopt-edit`). */
export interface AdoptedEdit {
  hostname: string;
  path: string | null;
  project: string;
  service: string;
  originRequest: Record<string, unknown> | null;
  targetReason: string;
}

export interface IngressServiceOptions {
  configPath: string;
  /** Keep every version in a git repository in the config directory (default true). */
  gitBackup?: boolean;
  driftPolicy?: DriftPolicy;
  /** Written into a brand-new file (cloudflared also takes them from its command line). */
  tunnel?: string;
  credentialsFile?: string;
  reporter?: IngressReporter;
  /** Persists an adopted hand edit into the ledger (policy `adopt-edit`). */
  adoptEdit?: (edit: AdoptedEdit) => void | Promise<void>;
}

/** A rendered version, ready for `write`. */
export interface PreparedConfig {
  content: string;
  /** The file on disk the render was based on (write refuses if it changed since). */
  basedOn: string | null;
  drift: Pick<DriftReport, 'status' | 'editedManaged' | 'addedUnmanaged' | 'removedUnmanaged'>;
  shadowed: RenderedIngress['shadowed'];
  managedCount: number;
  [key: string]: unknown;
}

export interface WriteOutcome {
  changed: boolean;
  /** The version's commit; null when git backup is off, nothing changed, or the commit runs during the reload. */
  commit: string | null;
  needsReload: boolean;
}

export interface WriteOptions {
  /**
   * When cloudflared must reload this version, commit it to git while it does (the reload takes hundreds of ms, the
   * commit some 15 ms that no longer add to a request): `takeCommit` then gives its id or its failure.
   */
  commitDuringReload?: boolean;
}

/** When a written version is committed: before `write` returns, during the reload, or before it returns but a failure only audited. */
type CommitMode = 'now' | 'during-reload' | 'best-effort';

const NOOP_REPORTER: IngressReporter = { event: () => undefined, audit: () => undefined };

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

/**
 * The semantic keys computed last, by text. Each write compares the new version with the one cloudflared last loaded
 * (written one change earlier, its document long gone from the parse cache): parsing its 1,000 rules again made
 * 8 MB of garbage a route change (docs/performance.md, Memory with use).
 */
const RECENT_KEYS = 3;
const recentKeys: { content: string; key: string }[] = [];

function semanticKey(content: string | null): string | null {
  if (content === null) return null;
  const known = recentKeys.find((entry) => entry.content === content);
  if (known) return known.key;
  let key: string;
  try {
    key = canonicalJson(ConfigDocument.parse(content).model());
  } catch {
    return `unparseable:${content}`;
  }
  recentKeys.unshift({ content, key });
  recentKeys.length = Math.min(recentKeys.length, RECENT_KEYS);
  return key;
}

function invalidConfig(where: string, issues: IngressIssue[]): TunnelManagerError {
  const first = issues[0];
  return new TunnelManagerError({
    code: 'INGRESS_INVALID',
    message: `${where} would be refused by cloudflared: ${formatIngressIssues(issues)}`,
    fix: first ? first.fix : 'Fix the ingress rules named above.',
    details: { issues },
  });
}

export class IngressService {
  private lastWritten: string | null = null;
  /** What the last written version holds, as its commit message compares it (kept, so a write parses no YAML for it). */
  private lastSummary: VersionSummary = summarizeText(null);
  /** The summary of the version `render` prepared, known without parsing it again. */
  private prepared: { content: string; summary: VersionSummary } | null = null;
  private lastLoaded: string | null = null;
  /** The commit HEAD points at and the file content it holds, as last committed by this service. */
  private head: { commit: string; content: string } | null = null;
  /** The disk content we last reported drift for, so one edit is reported once. */
  private lastReportedDisk: string | null = null;
  /** The shadowed rules we last reported, so a standing problem is reported once. */
  private lastReportedShadows = '[]';
  /** The commit of a version written with `commitDuringReload`, until `takeCommit` (or the next write) settles it. */
  private pendingCommit: Promise<{ commit: string | null } | { error: unknown }> | null = null;
  private readonly git: ConfigGit | null;
  private readonly reporter: IngressReporter;
  readonly driftPolicy: DriftPolicy;

  private constructor(private readonly options: IngressServiceOptions) {
    this.git = options.gitBackup === false ? null : new ConfigGit({ configPath: options.configPath, ...(options.credentialsFile ? { credentialsFile: options.credentialsFile } : {}) });
    this.reporter = options.reporter ?? NOOP_REPORTER;
    this.driftPolicy = options.driftPolicy ?? 'keep-ledger';
  }

  /**
   * Opens the config directory: creates it and the git repository if needed, and takes the baseline
   * (the last committed version is what we last wrote; the file on disk is what cloudflared runs now).
   */
  static async open(options: IngressServiceOptions): Promise<IngressService> {
    const service = new IngressService(options);
    await mkdir(dirname(options.configPath), { recursive: true });
    const onDisk = await service.readDisk();
    if (service.git) {
      await service.git.ensureRepository();
      service.lastWritten = await service.git.headContent();
      service.lastSummary = summarizeText(service.lastWritten);
      if (service.lastWritten === null && onDisk !== null) {
        const found = summarizeText(onDisk);
        await service.git.commit(commitMessage(summarizeText(null), found, { label: 'version found on disk when tunnel-manager first started' }));
        service.lastWritten = onDisk;
        service.lastSummary = found;
        if (validateConfigText(onDisk).length === 0) await service.git.markLastGood();
      }
    }
    service.lastLoaded = onDisk;
    return service;
  }

  get configPath(): string {
    return this.options.configPath;
  }

  /** The version tunnel-manager wrote last (null before the first write without git history). */
  get lastWrittenContent(): string | null {
    return this.lastWritten;
  }

  private async readDisk(): Promise<string | null> {
    try {
      return await readFile(this.options.configPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  private newFileBase(): ConfigDocument {
    const lines = [DEFAULT_FILE_HEADER.trimEnd()];
    if (this.options.tunnel) lines.push(`tunnel: ${this.options.tunnel}`);
    if (this.options.credentialsFile) lines.push(`credentials-file: ${this.options.credentialsFile}`);
    return ConfigDocument.parse(`${lines.join('\n')}\n`);
  }

  /** cloudflared's verdict on a file's text (YAML errors included); empty when it would start. */
  validate(content: string): IngressIssue[] {
    return validateConfigText(content);
  }

  /**
   * Checks the file on disk for hand edits, then renders it from `ledger` (dropping the hand-written rules of
   * the `retire` hostnames: see renderIngressConfig). Throws CONFIG_FILE_DRIFT when the
   * file on disk was edited into something cloudflared would refuse (it is then left alone), and
   * INGRESS_INVALID when the rendered file would not validate.
   */
  async render(ledger: readonly LedgerRule[], retire: readonly string[] = []): Promise<PreparedConfig> {
    const onDisk = await this.readDisk();
    const drift = detectDrift(this.lastWritten, onDisk);
    const effectiveLedger = [...ledger];

    if (drift.status === 'invalid') {
      this.reportInvalidEdit(onDisk, drift);
      const issues = drift.parseError ? drift.parseError.message : formatIngressIssues(drift.issues);
      throw new TunnelManagerError({
        code: 'CONFIG_FILE_DRIFT',
        message: `${this.options.configPath} was edited by hand and cloudflared would refuse it, so tunnel-manager will not overwrite it: ${issues}`,
        fix: `Fix the file by hand (${drift.parseError ? drift.parseError.fix : drift.issues[0]?.fix ?? 'see the issues above'}), or restore a version with \`tunnel-manager config history\` then \`tunnel-manager config rollback <commit>\`. Changes wait until then.`,
        details: { path: this.options.configPath, issues: drift.issues, parseError: drift.parseError },
      });
    }
    if (drift.status === 'drift' || drift.status === 'missing') {
      await this.resolveDrift(onDisk, drift, effectiveLedger);
    }

    const base = drift.disk ?? (this.lastWritten !== null ? ConfigDocument.parse(this.lastWritten) : this.newFileBase());
    const rendered = renderIngressConfig(base, effectiveLedger, retire);
    if (rendered.issues.length > 0) throw invalidConfig('The rendered config', rendered.issues);
    this.prepared = { content: rendered.content, summary: summarizeRendered(rendered.config, rendered.managed) };
    const shadows = JSON.stringify(rendered.shadowed);
    const newShadows = shadows === this.lastReportedShadows ? [] : rendered.shadowed;
    this.lastReportedShadows = shadows;
    for (const shadow of newShadows) {
      this.reporter.event({
        kind: 'ingress.rule_shadowed',
        project: effectiveLedger.find((rule) => ruleKey(rule.hostname, rule.path) === ruleKey(shadow.hostname, shadow.path))?.project ?? '*',
        data: {
          hostname: shadow.hostname,
          path: shadow.path,
          byRule: describeRule(shadow.byIndex, rendered.config.ingress[shadow.byIndex] ?? { service: '' }),
          fix: `Move the hand-written rule ingress[${shadow.byIndex}] below, or narrow it, so ${shadow.hostname} reaches its own rule.`,
        },
      });
    }
    return {
      content: rendered.content,
      basedOn: onDisk,
      drift: { status: drift.status, editedManaged: drift.editedManaged, addedUnmanaged: drift.addedUnmanaged, removedUnmanaged: drift.removedUnmanaged },
      shadowed: rendered.shadowed,
      managedCount: rendered.managed.length,
    };
  }

  private reportInvalidEdit(onDisk: string | null, drift: DriftReport): void {
    if (onDisk === this.lastReportedDisk) return;
    this.lastReportedDisk = onDisk;
    const data = { path: this.options.configPath, issues: drift.issues, parseError: drift.parseError };
    this.reporter.event({ kind: 'ingress.hand_edit_invalid', project: '*', data });
    this.reporter.audit({ action: 'ingress.drift', target: this.options.configPath, outcome: 'error', errorCode: 'CONFIG_FILE_DRIFT', details: { ...data, resolution: 'left-alone' } });
  }

  private async resolveDrift(onDisk: string | null, drift: DriftReport, ledger: LedgerRule[]): Promise<void> {
    const firstReport = onDisk !== this.lastReportedDisk;
    this.lastReportedDisk = onDisk;
    if (drift.status === 'missing') {
      if (firstReport) {
        const data = { path: this.options.configPath, resolution: 'rewritten-from-last-version' };
        this.reporter.event({ kind: 'ingress.file_missing', project: '*', data });
        this.reporter.audit({ action: 'ingress.drift', target: this.options.configPath, outcome: 'ok', errorCode: null, details: data });
      }
      return;
    }
    for (const edit of drift.editedManaged) {
      const index = ledger.findIndex((rule) => ruleKey(rule.hostname, rule.path) === ruleKey(edit.hostname, edit.path));
      const owner = index === -1 ? null : (ledger[index] as LedgerRule);
      const resolution = await this.resolveManagedEdit(edit, owner, index, ledger);
      if (!firstReport) continue;
      const data = { hostname: edit.hostname, path: edit.path, before: edit.before, after: edit.after, policy: this.driftPolicy, resolution };
      this.reporter.event({ kind: 'ingress.managed_rule_edited', project: owner?.project ?? '*', data });
      this.reporter.audit({ action: 'ingress.drift', target: edit.hostname, outcome: 'ok', errorCode: null, details: { ...data, project: owner?.project ?? null } });
    }
    if (firstReport && (drift.addedUnmanaged.length > 0 || drift.removedUnmanaged.length > 0)) {
      const data = { added: drift.addedUnmanaged, removed: drift.removedUnmanaged, resolution: 'kept-as-unmanaged' };
      this.reporter.event({ kind: 'ingress.unmanaged_rules_changed', project: '*', data });
      this.reporter.audit({ action: 'ingress.drift', target: this.options.configPath, outcome: 'ok', errorCode: null, details: data });
    }
  }

  private async resolveManagedEdit(edit: ManagedRuleEdit, owner: LedgerRule | null, index: number, ledger: LedgerRule[]): Promise<string> {
    if (!owner) return 'removed: the route is no longer in the ledger';
    if (this.driftPolicy === 'keep-ledger') return 'restored-ledger-version';
    if (edit.after === null) return 'restored-ledger-version: removing a route takes `route delete`, not a file edit';
    const service = String(edit.after.service);
    const originRequest = edit.after.originRequest && typeof edit.after.originRequest === 'object' ? (edit.after.originRequest as Record<string, unknown>) : null;
    const adopted: LedgerRule = {
      ...owner,
      service,
      originRequest,
      targetReason: `adopted from a hand edit of config.yml (was ${owner.service})`,
    };
    ledger[index] = adopted;
    await this.options.adoptEdit?.({
      hostname: owner.hostname,
      path: owner.path ?? null,
      project: owner.project,
      service,
      originRequest,
      targetReason: adopted.targetReason as string,
    });
    return 'adopted-edit';
  }

  /**
   * Writes a rendered version atomically and commits it. Refuses (CONFIG_FILE_DRIFT) when the file changed
   * on disk after the render; the watcher then asks for a new cycle, which sees the edit.
   */
  async write(prepared: Pick<PreparedConfig, 'content' | 'basedOn'>, label: string | null, options: WriteOptions = {}): Promise<WriteOutcome> {
    const onDisk = await this.readDisk();
    if (onDisk !== prepared.basedOn) {
      throw new TunnelManagerError({
        code: 'CONFIG_FILE_DRIFT',
        message: `${this.options.configPath} changed on disk while a new version was being rendered; nothing was written.`,
        fix: 'Nothing to do: the next cycle renders from the edited file. If edits keep racing, stop editing the file by hand while tunnel-manager runs.',
        details: { path: this.options.configPath },
      });
    }
    return this.writeContent(prepared.content, { label }, options.commitDuringReload === true ? 'during-reload' : 'now');
  }

  /** `kind`: what the commit message says besides the rules the version changes (see commitMessage). */
  private async writeContent(content: string, kind: { label?: string | null; why?: string | null }, mode: CommitMode = 'now'): Promise<WriteOutcome> {
    const issues = validateConfigText(content);
    if (issues.length > 0) throw invalidConfig('The version to write', issues);
    const summary = this.prepared?.content === content ? this.prepared.summary : summarizeText(content);
    const message = commitMessage(this.lastSummary, summary, kind);
    // `git commit -- FILE` reads the file: a commit still running for the previous version finishes before it changes.
    await this.settleCommit();
    const result = await writeFileAtomically(this.options.configPath, content);
    this.lastWritten = content;
    this.lastSummary = summary;
    this.lastReportedDisk = null;
    const needsReload = semanticKey(content) !== semanticKey(this.lastLoaded);
    if (mode === 'during-reload' && needsReload && this.git) {
      this.pendingCommit = this.commit(message).then(
        (commit) => ({ commit }),
        (error: unknown) => ({ error }),
      );
      return { changed: result.changed, commit: null, needsReload };
    }
    let commit: string | null = null;
    try {
      commit = await this.commit(message);
    } catch (error) {
      if (mode !== 'best-effort') throw error;
      const { message: reason, fix } = describeFailure(error);
      this.reporter.audit({ action: 'ingress.commit', target: this.options.configPath, outcome: 'error', errorCode: 'GIT_FAILED', details: { message: reason, fix, version: message.split('\n')[0] } });
    }
    return { changed: result.changed, commit, needsReload };
  }

  /**
   * The commit of the version last written with `commitDuringReload`: its id (null when none was pending), or its
   * GIT_FAILED thrown, so the version cloudflared now runs, which git could not record, is undone like a failed reload.
   */
  async takeCommit(): Promise<string | null> {
    const pending = this.pendingCommit;
    this.pendingCommit = null;
    if (pending === null) return null;
    const result = await pending;
    if ('error' in result) throw result.error;
    return result.commit;
  }

  /** Waits for a commit nobody collected (its reload failed, and that failure is the one reported). */
  private async settleCommit(): Promise<void> {
    await this.takeCommit().catch(() => null);
  }

  /** Commits the file as it is on disk; null when git backup is off or nothing changed. */
  async commit(message: string): Promise<string | null> {
    if (!this.git) return null;
    const content = await this.readDisk();
    const commit = (await this.git.commit(message)) ?? (await this.git.resolve('HEAD'));
    // Remember what HEAD holds, so marking it good needs one git call instead of four.
    this.head = commit === null || content === null ? null : { commit, content };
    return commit;
  }

  /** cloudflared runs the current version: remember it as the one to fall back to. */
  async markGood(): Promise<void> {
    await this.settleCommit();
    const onDisk = await this.readDisk();
    this.lastLoaded = onDisk;
    if (!this.git || onDisk === null) return;
    if (this.head !== null && this.head.content === onDisk) await this.git.markLastGood(this.head.commit);
    else if (onDisk === (await this.git.headContent())) await this.git.markLastGood();
  }

  /** Whether `content` is, to cloudflared, the version it last loaded successfully (comments and layout aside). */
  isRunning(content: string): boolean {
    return this.lastLoaded !== null && semanticKey(content) === semanticKey(this.lastLoaded);
  }

  /** Writes back the version cloudflared last loaded successfully (from git, else from memory). */
  async restoreLastGood(reason: string): Promise<{ commit: string | null; content: string }> {
    const fromGit = this.git ? await this.git.lastGood() : null;
    const content = fromGit?.content ?? this.lastLoaded;
    if (content === null) {
      throw new TunnelManagerError({
        code: 'RELOAD_FAILED',
        message: 'cloudflared refused the new config and there is no earlier version known to work to go back to.',
        fix: `Look at the cloudflared log for the reason, fix ${this.options.configPath} by hand, or roll back with \`tunnel-manager config rollback <commit>\`.`,
        details: { path: this.options.configPath },
      });
    }
    // Serving the version known to work comes first: when git cannot record the restore (the failure that may have
    // brought us here), the file is still restored and reloaded, and the audit log says the commit failed.
    const outcome = await this.writeContent(content, { label: `restore last good version${fromGit ? ` ${fromGit.commit.slice(0, 12)}` : ''}`, why: reason }, 'best-effort');
    return { commit: outcome.commit, content };
  }

  /** Writes an earlier version from git (validated first); the machine then reloads as for any version. */
  /**
   * Restores the hand-written part of config.yml as it was at `commit`. The managed rules are not taken from the old
   * version: they are rendered from `ledger` (the route ledger now), so a rollback can never leave a route the ledger
   * calls active without its rule (or bring back the rule of a deleted route). Without a ledger (the CLI, service
   * stopped) the old file is restored as it was, and the next start renders the managed rules from the ledger.
   */
  async rollbackTo(commit: string, ledger?: readonly LedgerRule[], retire: readonly string[] = []): Promise<WriteOutcome & { restoredFrom: string; managedFromLedger: boolean }> {
    if (!this.git) {
      throw new TunnelManagerError({
        code: 'GIT_FAILED',
        message: 'Rollback needs the config history, and git backup is off.',
        fix: 'Set ingress.gitBackup: true in the tunnel-manager config (history starts with the next version), or edit the file by hand.',
        details: { path: this.options.configPath },
      });
    }
    const resolved = (await this.git.resolve(commit)) ?? commit;
    const old = await this.git.show(commit);
    const issues = validateConfigText(old);
    if (issues.length > 0) throw invalidConfig(`Version ${commit}`, issues);
    let content = old;
    if (ledger !== undefined) {
      const rendered = renderIngressConfig(ConfigDocument.parse(old), ledger, retire);
      if (rendered.issues.length > 0) throw invalidConfig(`Version ${commit} with the routes of the ledger`, rendered.issues);
      content = rendered.content;
    }
    const why = ledger === undefined ? 'the file as it was at that version' : 'the hand-written rules as they were at that version; managed rules from the route ledger';
    const outcome = await this.writeContent(content, { label: `rollback to ${resolved.slice(0, 12)}`, why });
    return { ...outcome, restoredFrom: resolved, managedFromLedger: ledger !== undefined };
  }

  async history(limit = 50): Promise<ConfigVersion[]> {
    return this.git ? this.git.history(limit) : [];
  }

  async show(commit: string): Promise<string> {
    if (!this.git) throw new TunnelManagerError({ code: 'GIT_FAILED', message: 'There is no config history: git backup is off.', fix: 'Set ingress.gitBackup: true in the tunnel-manager config.', details: {} });
    return this.git.show(commit);
  }

  /** Starts the file watcher; `onEdit` is called when the file differs from what we last wrote. Returns stop(). */
  watch(onEdit: () => void, settleMs = 200): () => void {
    const watcher = new ConfigFileWatcher(this.options.configPath, (content) => content === this.lastWritten, onEdit, settleMs);
    watcher.start();
    return () => watcher.stop();
  }
}

/** `tunnel-manager config history`: the versions of the config file, newest first (read-only; no service needed). */
export async function readConfigHistory(configPath: string, limit = 50): Promise<ConfigVersion[]> {
  if (!existsSync(`${dirname(configPath)}/.git`)) return [];
  return new ConfigGit({ configPath }).history(limit);
}
