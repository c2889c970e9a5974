/**
 * The loader: takes a version the generator made (ingress-generator.ts) to disk and to git. It compares it with what
 * is on disk and with what cloudflared last loaded, saves it atomically, commits it (during the reload when one
 * follows: `takeCommit` collects that commit), marks the version cloudflared accepted as the last good one, restores
 * it, and rolls back to an earlier version. Reloading cloudflared is not here: the ingress machine asks the tunnel.
 *
 * Only the ingress machine's effects call it, one at a time, so the file has exactly one writer.
 *
 * What it remembers between calls, and why none of it goes into the ingress machine's persisted context:
 * - `lastWritten`/`lastSummary`/`head` are derived from git on start (HEAD's content), and from the file itself
 *   without git; each is a cache of what git already holds.
 * - `lastLoaded` (what cloudflared runs) is derived from disk on start: cloudflared is started on, or adopted with, the
 *   file on disk, and the start render writes and marks good the current version before the machine runs a cycle.
 *   Keeping the text itself in the machine's context would store ~100 KB (1,000 rules) in every snapshot the durable
 *   supervisor writes (at most every 200 ms); the version that counts after a restart is tagged in git
 *   (`tunnel-manager-last-good`), which `restoreLastGood` reads first.
 * - `pendingCommit` is a promise (not data a snapshot can hold), alive only while a reload runs: after a restart
 *   there is no reload in flight for it, and the version it was recording is on disk. The start render finds it there
 *   as a difference from HEAD (reported as a hand edit: after a crash nothing tells the two apart) and commits the
 *   version it writes, so git catches up on start. The machine keeps what it needs of it in its context: the commit
 *   id `reload` answers (`written.commit`, `lastCommit`).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeFailure } from '../../../machines/ingress.machine.ts';
import { TunnelManagerError } from '../../errors.ts';
import { commitMessage, summarizeText, type VersionSummary } from './config-commit-message.ts';
import { ConfigDocument } from './config-document.ts';
import { writeFileAtomically } from './config-file-writer.ts';
import { ConfigGit, type ConfigVersion } from './config-git.ts';
import { generateConfig, invalidConfig } from './ingress-generator.ts';
import type { LedgerRule } from './ingress-render.ts';
import { validateConfigText } from './ingress-validation.ts';

export interface IngressLoaderOptions {
  configPath: string;
  /** Keep every version in a git repository in the config directory (default true). */
  gitBackup?: boolean;
  /** Passed to git, which keeps it out of the repository. */
  credentialsFile?: string;
}

/** A version to save: its bytes, what it holds (for the commit message), and the disk content it was made from. */
export interface VersionToSave {
  content: string;
  summary?: VersionSummary;
  /** The file on disk the version was generated from: `save` refuses if it changed since. */
  basedOn: string | null;
}

export interface WriteOutcome {
  changed: boolean;
  /** The version's commit; null when git backup is off, nothing changed, or the commit runs during the reload. */
  commit: string | null;
  needsReload: boolean;
  /** A commit that failed where the write goes on without it (a restore): for the audit log. */
  commitFailure?: { message: string; fix: string; version: string };
}

/** When a written version is committed: before `save` returns, during the reload, or before it returns but a failure only reported. */
type CommitMode = 'now' | 'during-reload' | 'best-effort';

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
    key = ConfigDocument.parse(content).semanticKey();
  } catch {
    return `unparseable:${content}`;
  }
  recentKeys.unshift({ content, key });
  recentKeys.length = Math.min(recentKeys.length, RECENT_KEYS);
  return key;
}

function isMissingFile(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}

function noHistory(configPath: string, message: string, fix: string): TunnelManagerError {
  return new TunnelManagerError({ code: 'GIT_FAILED', message, fix, details: { path: configPath } });
}

export class IngressLoader {
  private lastWritten: string | null = null;
  /** What the last written version holds, as its commit message compares it (kept, so a write parses no YAML for it). */
  private lastSummary: VersionSummary = summarizeText(null);
  private lastLoaded: string | null = null;
  /** The commit HEAD points at and the file content it holds, as last committed here. */
  private head: { commit: string; content: string } | null = null;
  /** The commit of a version saved for `during-reload`, until `takeCommit` (or the next save) settles it. */
  private pendingCommit: Promise<{ commit: string | null } | { error: unknown }> | null = null;
  /** How many versions were written: a drift report made before the last write is stale (see DriftCheck). */
  private writes = 0;
  private readonly git: ConfigGit | null;

  private constructor(private readonly options: IngressLoaderOptions) {
    this.git = options.gitBackup === false ? null : new ConfigGit({ configPath: options.configPath, ...(options.credentialsFile ? { credentialsFile: options.credentialsFile } : {}) });
  }

  /**
   * Opens the config directory: creates it and the git repository if needed, and takes the baseline
   * (the last committed version is what we last wrote; the file on disk is what cloudflared runs now).
   */
  static async open(options: IngressLoaderOptions): Promise<IngressLoader> {
    const loader = new IngressLoader(options);
    await mkdir(dirname(options.configPath), { recursive: true });
    const onDisk = await loader.readDisk();
    if (loader.git) await loader.takeBaselineFromGit(loader.git, onDisk);
    loader.lastLoaded = onDisk;
    return loader;
  }

  private async takeBaselineFromGit(git: ConfigGit, onDisk: string | null): Promise<void> {
    await git.ensureRepository();
    this.lastWritten = await git.headContent();
    this.lastSummary = summarizeText(this.lastWritten);
    if (this.lastWritten !== null || onDisk === null) return;
    const found = summarizeText(onDisk);
    await git.commit(commitMessage(summarizeText(null), found, { label: 'version found on disk when tunnel-manager first started' }));
    this.lastWritten = onDisk;
    this.lastSummary = found;
    if (validateConfigText(onDisk).length === 0) await git.markLastGood();
  }

  get configPath(): string {
    return this.options.configPath;
  }

  /** The version tunnel-manager wrote last (null before the first write without git history). */
  get lastWrittenContent(): string | null {
    return this.lastWritten;
  }

  /** Counts the versions written since start (each write makes an edit seen again a new one). */
  get writeCount(): number {
    return this.writes;
  }

  /** The file as it is on disk now (null when there is none). */
  async readDisk(): Promise<string | null> {
    try {
      return await readFile(this.options.configPath, 'utf8');
    } catch (error) {
      if (isMissingFile(error)) return null;
      throw error;
    }
  }

  /**
   * Saves a generated version atomically and commits it (with `commitDuringReload`, while cloudflared reloads it:
   * `takeCommit` then gives its id or its failure). Refuses (CONFIG_FILE_DRIFT) when the file changed on disk after
   * the version was generated; the watcher then asks for a new cycle, which sees the edit.
   */
  async save(version: VersionToSave, label: string | null, options: { commitDuringReload?: boolean } = {}): Promise<WriteOutcome> {
    const onDisk = await this.readDisk();
    if (onDisk !== version.basedOn) {
      throw new TunnelManagerError({
        code: 'CONFIG_FILE_DRIFT',
        message: `${this.options.configPath} changed on disk while a new version was being rendered; nothing was written.`,
        fix: 'Nothing to do: the next cycle renders from the edited file. If edits keep racing, stop editing the file by hand while tunnel-manager runs.',
        details: { path: this.options.configPath },
      });
    }
    return this.writeContent(version.content, version.summary, { label }, options.commitDuringReload === true ? 'during-reload' : 'now');
  }

  /** `kind`: what the commit message says besides the rules the version changes (see commitMessage). */
  private async writeContent(content: string, known: VersionSummary | undefined, kind: { label?: string | null; why?: string | null }, mode: CommitMode): Promise<WriteOutcome> {
    const issues = validateConfigText(content);
    if (issues.length > 0) throw invalidConfig('The version to write', issues);
    const summary = known ?? summarizeText(content);
    const message = commitMessage(this.lastSummary, summary, kind);
    // `git commit -- FILE` reads the file: a commit still running for the previous version finishes before it changes.
    await this.settleCommit();
    const result = await writeFileAtomically(this.options.configPath, content);
    this.lastWritten = content;
    this.lastSummary = summary;
    this.writes += 1;
    const needsReload = semanticKey(content) !== semanticKey(this.lastLoaded);
    if (mode === 'during-reload' && needsReload && this.git) {
      this.pendingCommit = this.commit(message).then(
        (commit) => ({ commit }),
        (error: unknown) => ({ error }),
      );
      return { changed: result.changed, commit: null, needsReload };
    }
    try {
      return { changed: result.changed, commit: await this.commit(message), needsReload };
    } catch (error) {
      if (mode !== 'best-effort') throw error;
      const { message: reason, fix } = describeFailure(error);
      return { changed: result.changed, commit: null, needsReload, commitFailure: { message: reason, fix, version: message.split('\n')[0] ?? '' } };
    }
  }

  /**
   * The commit of the version last saved with `commitDuringReload`: its id (null when none was pending), or its
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
  async restoreLastGood(reason: string): Promise<WriteOutcome & { content: string }> {
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
    // brought us here), the file is still restored and reloaded, and the caller audits the failed commit.
    const label = `restore last good version${fromGit ? ` ${fromGit.commit.slice(0, 12)}` : ''}`;
    const outcome = await this.writeContent(content, undefined, { label, why: reason }, 'best-effort');
    return { ...outcome, content };
  }

  /**
   * Restores the hand-written part of config.yml as it was at `commit`. The managed rules are not taken from the old
   * version: they are rendered from `ledger` (the route ledger now), so a rollback can never leave a route the ledger
   * calls active without its rule (or bring back the rule of a deleted route). Without a ledger (the CLI, service
   * stopped) the old file is restored as it was, and the next start renders the managed rules from the ledger.
   */
  async rollbackTo(commit: string, ledger?: readonly LedgerRule[], retire: readonly string[] = []): Promise<WriteOutcome & { restoredFrom: string; managedFromLedger: boolean }> {
    const git = this.requireGit('Rollback needs the config history, and git backup is off.', 'Set ingress.gitBackup: true in the tunnel-manager config (history starts with the next version), or edit the file by hand.');
    const resolved = (await git.resolve(commit)) ?? commit;
    const old = await git.show(commit);
    const issues = validateConfigText(old);
    if (issues.length > 0) throw invalidConfig(`Version ${commit}`, issues);
    const generated = ledger === undefined ? null : generateConfig(ConfigDocument.parse(old), ledger, retire, `Version ${commit} with the routes of the ledger`);
    const why = ledger === undefined ? 'the file as it was at that version' : 'the hand-written rules as they were at that version; managed rules from the route ledger';
    const outcome = await this.writeContent(generated?.content ?? old, undefined, { label: `rollback to ${resolved.slice(0, 12)}`, why }, 'now');
    return { ...outcome, restoredFrom: resolved, managedFromLedger: ledger !== undefined };
  }

  async history(limit = 50): Promise<ConfigVersion[]> {
    return this.git ? this.git.history(limit) : [];
  }

  async show(commit: string): Promise<string> {
    return this.requireGit('There is no config history: git backup is off.', 'Set ingress.gitBackup: true in the tunnel-manager config.').show(commit);
  }

  private requireGit(message: string, fix: string): ConfigGit {
    if (!this.git) throw noHistory(this.options.configPath, message, fix);
    return this.git;
  }
}

/** `tunnel-manager config history`: the versions of the config file, newest first (read-only; no service needed). */
export async function readConfigHistory(configPath: string, limit = 50): Promise<ConfigVersion[]> {
  if (!existsSync(`${dirname(configPath)}/.git`)) return [];
  return new ConfigGit({ configPath }).history(limit);
}
