/**
 * Every version of config.yml, in a git repository in the file's own directory.
 *
 * - Created if absent, with a local identity (commits work on a machine with no global git identity) and
 *   a `.gitignore` that ignores everything but itself and the config file, so credentials
 *   (`<tunnel-id>.json`, `cert.pem`, the credentials-file) can never enter history.
 * - Only the config file (and `.gitignore`) is ever staged, by name.
 * - One commit per written version; the tag `tunnel-manager-last-good` marks the version cloudflared
 *   last loaded successfully, which is what a failed reload falls back to.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TunnelManagerError } from '../../errors.ts';

export const LAST_GOOD_TAG = 'tunnel-manager-last-good';
const IDENTITY = { name: 'tunnel-manager', email: 'tunnel-manager@localhost' };

export interface ConfigVersion {
  commit: string;
  /** ISO 8601 time of the commit. */
  date: string;
  /** The first line of the message. */
  subject: string;
  /** The rest of the message (one line per change when several were coalesced). */
  body: string;
  /** Whether this is the version cloudflared last loaded successfully. */
  lastGood: boolean;
}

export interface ConfigGitOptions {
  /** The config file's path; its directory becomes the repository. */
  configPath: string;
  /** The credentials file, when it lives in the same directory (ignored by name as well). */
  credentialsFile?: string;
}

function gitFailed(action: string, directory: string, error: unknown): TunnelManagerError {
  const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new TunnelManagerError({
    code: 'GIT_FAILED',
    message: `git ${action} failed in ${directory}: ${reason}`,
    fix: `Check that git is installed and that ${directory} is writable (run \`git -C ${directory} status\` to see the problem); set ingress.gitBackup: false to run without history.`,
    details: { directory, action },
    cause: error,
  });
}

/** The `.gitignore` we write: everything is ignored except itself and the config file. */
export function gitignoreFor(configFileName: string, credentialsFile?: string): string {
  const lines = [
    '# Written by tunnel-manager: only the ingress config is versioned here.',
    '# Credentials (tunnel JSON, cert.pem) must never enter history, so everything else is ignored.',
    '*',
    '!.gitignore',
    `!${configFileName}`,
    '*.json',
    'cert.pem',
    '*.pem',
  ];
  if (credentialsFile) lines.push(basename(credentialsFile));
  lines.push(`.${configFileName}.tmp-*`);
  return `${lines.join('\n')}\n`;
}

/** A git command that failed: git's first words on standard error, its exit code and what it printed. */
class GitCommandError extends Error {
  constructor(
    reason: string,
    readonly exitCode: unknown,
    readonly stdout: string,
  ) {
    super(reason);
  }
}

/**
 * Runs `git <args>` in `directory` and resolves with its standard output; rejects with git's own first words
 * on standard error. (Plain execFile: simple-git waited a fixed 50 ms after every command that printed
 * nothing, such as `git add`, which made each ingress cycle some 100 ms slower; see docs/performance.md.)
 */
function runGit(directory: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd: directory, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (error, stdout, stderr) => {
      if (error) {
        const reason = String(stderr).trim() || error.message;
        reject(new GitCommandError(reason, error.code, String(stdout)));
        return;
      }
      resolve(String(stdout));
    });
  });
}

/** How old a ref's `.lock` must be to be one a killed process left: writing a ref takes milliseconds. */
const STALE_LOCK_MS = 10_000;

/**
 * Removes the `.lock` of the last-good tag when a process killed while writing it left it behind (a manager killed
 * between the write and the rename, or a killed `git tag`): this repository has one writer, the manager, and a lock
 * that old is held by nobody. Left in place, it failed every later mark, and the next start with it (GIT_FAILED).
 */
async function removeStaleLock(lock: string): Promise<void> {
  const age = await stat(lock).then((info) => Date.now() - info.mtimeMs, () => null);
  if (age !== null && age > STALE_LOCK_MS) await rm(lock, { force: true });
}

export class ConfigGit {
  readonly directory: string;
  readonly fileName: string;
  private readonly git: { raw: (args: string[]) => Promise<string> };
  /**
   * The housekeeping `git commit` would run in-line before returning (`git maintenance run --auto`: one more git
   * process, 8 ms here, on every version), run after the commit instead, while cloudflared loads the new file. The
   * next write to the repository waits for it, so git has one writer at a time. Like `git commit` itself, a failed
   * housekeeping run is not the commit's failure (the next run tries again).
   */
  private housekeeping: Promise<void> = Promise.resolve();

  constructor(private readonly options: ConfigGitOptions) {
    this.directory = dirname(options.configPath);
    this.fileName = basename(options.configPath);
    this.git = { raw: (args) => runGit(this.directory, args) };
  }

  /** Makes sure the directory is a repository of its own with our `.gitignore` and a local identity. */
  async ensureRepository(): Promise<void> {
    try {
      if (!existsSync(join(this.directory, '.git'))) {
        await this.git.raw(['init']);
      }
      await this.git.raw(['config', '--local', 'user.name', IDENTITY.name]);
      await this.git.raw(['config', '--local', 'user.email', IDENTITY.email]);
      await this.git.raw(['config', '--local', 'commit.gpgsign', 'false']);
      await this.git.raw(['config', '--local', 'tag.gpgsign', 'false']);
      const ignorePath = join(this.directory, '.gitignore');
      const wanted = gitignoreFor(this.fileName, this.options.credentialsFile);
      const current = existsSync(ignorePath) ? await readFile(ignorePath, 'utf8') : null;
      if (current !== wanted) await writeFile(ignorePath, wanted, { mode: 0o644 });
    } catch (error) {
      throw gitFailed('init', this.directory, error);
    }
  }

  /**
   * Commits the config file as it is on disk (and the `.gitignore`). Returns the new commit id, or null when
   * the file is unchanged since the last commit.
   */
  async commit(message: string): Promise<string | null> {
    const paths = ['.gitignore', this.fileName];
    const commit = () => this.git.raw(['-c', 'maintenance.auto=false', 'commit', '--no-verify', '--quiet', '-m', message, '--', ...paths]);
    await this.housekeeping;
    try {
      try {
        // `git commit -- PATHS` commits those files as they are on disk: no `git add` process once they are tracked.
        await commit();
      } catch (error) {
        const stdout = error instanceof GitCommandError ? error.stdout : '';
        // Nothing changed: git says so on stdout and exits 1.
        if (/nothing to commit|no changes added/.test(stdout)) return null;
        // Not tracked yet (the first version): stage them by name once, then commit.
        if (!(error instanceof Error) || !/did not match any file\(s\) known to git/.test(error.message)) throw error;
        await this.git.raw(['add', '--', ...paths]);
        await commit();
      }
      const id = (await this.headFromRefFile()) ?? (await this.git.raw(['rev-parse', 'HEAD'])).trim();
      this.housekeeping = this.startHousekeeping();
      return id;
    } catch (error) {
      throw gitFailed('commit', this.directory, error);
    }
  }

  /** Starts the housekeeping once the caller has its commit (spawning a process blocks this thread for a few ms). */
  private startHousekeeping(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve))
      .then(() => this.git.raw(['maintenance', 'run', '--auto', '--quiet']))
      .then(
        () => undefined,
        () => undefined,
      );
  }

  /**
   * HEAD's commit id read from the repository's files (HEAD names a branch, whose loose ref `git commit` has
   * just written): one git process less per version. Null when that is not how this repository keeps it.
   */
  private async headFromRefFile(): Promise<string | null> {
    try {
      const head = (await readFile(join(this.directory, '.git', 'HEAD'), 'utf8')).trim();
      const ref = /^ref: (refs\/heads\/[^\s]+)$/.exec(head)?.[1];
      if (ref === undefined) return null;
      const id = (await readFile(join(this.directory, '.git', ref), 'utf8')).trim();
      return /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(id) ? id : null;
    } catch {
      return null;
    }
  }

  private async hasCommits(): Promise<boolean> {
    try {
      await this.git.raw(['rev-parse', '--verify', '--quiet', 'HEAD']);
      return true;
    } catch {
      return false;
    }
  }

  /** The newest versions first. */
  async history(limit = 50): Promise<ConfigVersion[]> {
    if (!(await this.hasCommits())) return [];
    try {
      const lastGood = await this.resolve(LAST_GOOD_TAG);
      const separator = '\u001e';
      const raw = await this.git.raw(['log', `--max-count=${limit}`, `--format=%H%x1f%aI%x1f%s%x1f%b${separator}`, '--', this.fileName]);
      return raw
        .split(separator)
        .map((record) => record.replace(/^\n/, ''))
        .filter((record) => record.trim() !== '')
        .map((record) => {
          const [commit = '', date = '', subject = '', body = ''] = record.split('\u001f');
          return { commit, date, subject, body: body.trim(), lastGood: commit === lastGood };
        });
    } catch (error) {
      throw gitFailed('log', this.directory, error);
    }
  }

  /** The full commit id for `ref` (a short id, a tag, HEAD), or null when it does not exist. */
  async resolve(ref: string): Promise<string | null> {
    try {
      return (await this.git.raw(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).trim() || null;
    } catch {
      return null;
    }
  }

  /**
   * The config file's content at `commit`. A commit that does not exist is the caller's input, not a git failure:
   * INPUT_INVALID naming `commit`, with the way to list the versions.
   */
  async show(commit: string): Promise<string> {
    const resolved = /^[0-9a-zA-Z._/~^-]+$/.test(commit) ? await this.resolve(commit) : null;
    if (!resolved) {
      throw new TunnelManagerError({
        code: 'INPUT_INVALID',
        message: `commit: there is no version "${commit}" of ${this.fileName} in ${this.directory}.`,
        fix: 'List the versions with `tunnel-manager config history` and pass one of the commit ids it shows.',
        details: { directory: this.directory, commit },
      });
    }
    try {
      return await this.git.raw(['show', `${resolved}:${this.fileName}`]);
    } catch (error) {
      throw gitFailed(`show ${resolved}`, this.directory, error);
    }
  }

  /** The committed content at HEAD, or null before the first commit. */
  async headContent(): Promise<string | null> {
    if (!(await this.hasCommits())) return null;
    try {
      return await this.git.raw(['show', `HEAD:${this.fileName}`]);
    } catch {
      return null;
    }
  }

  /** Marks `commit` (default HEAD) as the version cloudflared loaded successfully. */
  async markLastGood(commit = 'HEAD'): Promise<void> {
    await this.housekeeping;
    if (commit === 'HEAD' && !(await this.hasCommits())) return;
    if (await this.writeTagRef(LAST_GOOD_TAG, commit)) return;
    try {
      await this.git.raw(['tag', '--force', LAST_GOOD_TAG, commit]);
    } catch (error) {
      throw gitFailed('tag', this.directory, error);
    }
  }

  /**
   * A lightweight tag is a ref file holding the commit id: written the way git writes one (exclusive `.lock` file,
   * then rename), it is one git process less per version. Only for a full commit id in a repository that keeps its
   * refs as files (`refs/tags` is a directory and there is no `reftable`); false (the caller runs `git tag`)
   * otherwise or when the lock is held.
   */
  private async writeTagRef(tag: string, commit: string): Promise<boolean> {
    if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) return false;
    const gitDir = join(this.directory, '.git');
    const tags = join(gitDir, 'refs', 'tags');
    const ref = join(tags, tag);
    const lock = `${ref}.lock`;
    try {
      if (existsSync(join(gitDir, 'reftable')) || !(await stat(tags)).isDirectory()) return false;
      await removeStaleLock(lock);
      await writeFile(lock, `${commit}\n`, { flag: 'wx', mode: 0o644 });
    } catch {
      return false;
    }
    try {
      await rename(lock, ref);
      return true;
    } catch {
      await rm(lock, { force: true });
      return false;
    }
  }

  /** The last version marked good, or null when none is. */
  async lastGood(): Promise<{ commit: string; content: string } | null> {
    const commit = await this.resolve(LAST_GOOD_TAG);
    if (!commit) return null;
    return { commit, content: await this.show(commit) };
  }

  /** The file names that ever entered history (for checks that credentials never did). */
  async trackedPathsInHistory(): Promise<string[]> {
    if (!(await this.hasCommits())) return [];
    const raw = await this.git.raw(['log', '--all', '--name-only', '--format=']);
    return [...new Set(raw.split('\n').map((line) => line.trim()).filter((line) => line !== ''))].sort();
  }
}
