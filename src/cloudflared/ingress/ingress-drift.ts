/**
 * Drift: edits made to config.yml outside tunnel-manager.
 *
 * `detectDrift` compares the file on disk with the version we last wrote (pure; run before every render).
 * `ConfigFileWatcher` notices edits as they happen and asks for a render cycle, which runs the check.
 *
 * - New, changed or removed *unmanaged* rules (and other top-level keys) are someone else's: kept as they are.
 * - A *managed* rule that was edited or removed is reported; the policy decides what wins:
 *   `keep-ledger` renders the ledger's version again, `adopt-edit` takes the edit into the ledger.
 * - A file that no longer parses or validates is reported and never overwritten by a render.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { toErrorShape, type ErrorShape } from '../../errors.ts';
import { ConfigDocument, type IngressRuleChunk } from './config-document.ts';
import { canonicalJson } from './config-values.ts';
import type { IngressIssue, IngressRule } from '../../ingress-model.ts';
import { hasOwnManagedMarker, ruleKey } from './ingress-render.ts';
import { validateCloudflaredConfig } from './ingress-validation.ts';

export type DriftPolicy = 'keep-ledger' | 'adopt-edit';

export interface ManagedRuleEdit {
  hostname: string;
  path: string | null;
  /** The rule as we last wrote it. */
  before: IngressRule;
  /** The rule as it is on disk now; null when it was removed (or its hostname/path changed). */
  after: IngressRule | null;
}

export interface UnmanagedRuleRef {
  index: number;
  hostname: string | null;
  path: string | null;
}

export interface DriftReport {
  /**
   * none: the file is what we last wrote (or there is nothing to compare with);
   * drift: it was edited by hand and still validates; invalid: it was edited and cloudflared would refuse it;
   * missing: the file we wrote is gone.
   */
  status: 'none' | 'drift' | 'invalid' | 'missing';
  editedManaged: ManagedRuleEdit[];
  addedUnmanaged: UnmanagedRuleRef[];
  removedUnmanaged: UnmanagedRuleRef[];
  /** Whether anything outside the ingress rules changed (other keys, comments, formatting). */
  otherChanges: boolean;
  /** Why the file on disk is invalid (validation), when status is invalid. */
  issues: IngressIssue[];
  /** Why the file on disk could not be parsed at all, when status is invalid. */
  parseError: ErrorShape | null;
  /** The parsed file on disk, when it parsed. */
  disk: ConfigDocument | null;
}

function keyOf(chunk: IngressRuleChunk): string {
  const { hostname, path } = chunk.rule;
  return ruleKey(typeof hostname === 'string' ? hostname : '', typeof path === 'string' ? path : '');
}

function refOf(chunk: IngressRuleChunk): UnmanagedRuleRef {
  const { hostname, path } = chunk.rule;
  return {
    index: chunk.index,
    hostname: typeof hostname === 'string' && hostname !== '' ? hostname : null,
    path: typeof path === 'string' && path !== '' ? path : null,
  };
}

function emptyReport(status: DriftReport['status'], disk: ConfigDocument | null): DriftReport {
  return { status, editedManaged: [], addedUnmanaged: [], removedUnmanaged: [], otherChanges: false, issues: [], parseError: null, disk };
}

/** Compares the file on disk with the version we last wrote. Either may be null (no file / no baseline). */
export function detectDrift(lastWritten: string | null, onDisk: string | null): DriftReport {
  if (onDisk === null) return emptyReport(lastWritten === null ? 'none' : 'missing', null);
  let disk: ConfigDocument;
  try {
    disk = ConfigDocument.parse(onDisk);
  } catch (error) {
    return { ...emptyReport('invalid', null), parseError: toErrorShape(error) };
  }
  if (lastWritten !== null && onDisk === lastWritten) return emptyReport('none', disk);
  const issues = onDisk.trim() === '' && lastWritten === null ? [] : validateCloudflaredConfig(disk.view());
  if (issues.length > 0) return { ...emptyReport('invalid', disk), issues };
  if (lastWritten === null) return emptyReport('none', disk);

  let previous: ConfigDocument;
  try {
    previous = ConfigDocument.parse(lastWritten);
  } catch {
    return emptyReport('drift', disk);
  }
  return compareVersions(previous, disk);
}

/** What a hand edit changed between the version we wrote (`previous`) and the file on disk, both valid. */
function compareVersions(previous: ConfigDocument, disk: ConfigDocument): DriftReport {
  const report = emptyReport('drift', disk);
  const { edited, managedKeys } = editedManagedRules(previous, disk);
  report.editedManaged = edited;
  const unmanaged = (document: ConfigDocument): Map<string, IngressRuleChunk> =>
    new Map(
      document
        .rules()
        .filter((chunk) => !managedKeys.has(keyOf(chunk)))
        .map((chunk) => [`${keyOf(chunk)}\u0000${canonicalJson(chunk.rule)}`, chunk]),
    );
  const previousUnmanaged = unmanaged(previous);
  const diskUnmanaged = unmanaged(disk);
  for (const [key, chunk] of diskUnmanaged) if (!previousUnmanaged.has(key)) report.addedUnmanaged.push(refOf(chunk));
  for (const [key, chunk] of previousUnmanaged) if (!diskUnmanaged.has(key)) report.removedUnmanaged.push(refOf(chunk));
  const { ingress: _diskIngress, ...diskRest } = disk.view();
  const { ingress: _previousIngress, ...previousRest } = previous.view();
  report.otherChanges =
    canonicalJson(diskRest) !== canonicalJson(previousRest) ||
    (report.editedManaged.length === 0 && report.addedUnmanaged.length === 0 && report.removedUnmanaged.length === 0);
  return report;
}

/** The managed rules of `previous` that are not on disk as we wrote them, and the keys of all its managed rules. */
function editedManagedRules(previous: ConfigDocument, disk: ConfigDocument): { edited: ManagedRuleEdit[]; managedKeys: Set<string> } {
  const diskByKey = new Map(disk.rules().map((chunk) => [keyOf(chunk), chunk]));
  const managedKeys = new Set<string>();
  const edited: ManagedRuleEdit[] = [];
  for (const chunk of previous.rules()) {
    if (!hasOwnManagedMarker(chunk)) continue;
    const key = keyOf(chunk);
    managedKeys.add(key);
    const now = diskByKey.get(key);
    if (now && canonicalJson(now.rule) === canonicalJson(chunk.rule)) continue;
    const { hostname, path } = chunk.rule;
    edited.push({
      hostname: String(hostname),
      path: typeof path === 'string' && path !== '' ? path : null,
      before: chunk.rule,
      after: now ? now.rule : null,
    });
  }
  return { edited, managedKeys };
}

/**
 * Watches the config file's directory (an atomic rename replaces the file's inode, so the file itself cannot
 * be watched) and calls `onEdit` once things settle, when the content differs from what we last wrote.
 */
export class ConfigFileWatcher {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly configPath: string,
    /** Whether `content` is the version tunnel-manager itself wrote last (then nothing is reported). */
    private readonly isOwnVersion: (content: string | null) => boolean,
    private readonly onEdit: () => void,
    private readonly settleMs = 200,
  ) {}

  start(): void {
    if (this.watcher) return;
    const name = basename(this.configPath);
    this.watcher = watch(dirname(this.configPath), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed.toString() !== name) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.check(), this.settleMs);
    });
    this.watcher.on('error', () => undefined);
  }

  private async check(): Promise<void> {
    this.timer = null;
    const content = await readFile(this.configPath, 'utf8').catch(() => null);
    if (!this.isOwnVersion(content)) this.onEdit();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
  }
}
