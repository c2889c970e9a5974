/**
 * The drift policy, run before every render: what a hand edit of config.yml (found by `detectDrift`) does to the
 * next version, and what is worth reporting about it. Nothing here writes or publishes: the adopted edits and the
 * reports come back as data, and the ingress effects (src/app/effects/ingress-effects.ts) take them to the ledger,
 * the events table and the audit log. The only state is which reports were already made, so one edit is reported once.
 */
import { TunnelManagerError } from '../../errors.ts';
import type { IngressRule } from '../../ingress-model.ts';
import type { ConfigDocument } from './config-document.ts';
import { isRecord } from './config-values.ts';
import { detectDrift, type DriftPolicy, type DriftReport, type ManagedRuleEdit } from './ingress-drift.ts';
import type { GeneratedConfig } from './ingress-generator.ts';
import { ruleKey, type LedgerRule } from './ingress-render.ts';
import { describeRule, formatIngressIssues } from './ingress-validation.ts';

/** One thing to tell the operator: an event (events table, bus), and for a decision taken, an audit row. */
export interface IngressReport {
  event: { kind: string; project: string; data: Record<string, unknown> };
  audit?: { action: string; target: string | null; outcome: 'ok' | 'error'; errorCode: string | null; details: Record<string, unknown> };
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

/** What the next render starts from once the file on disk was looked at. */
export interface DriftOutcome {
  /** The ledger to render, with adopted edits applied. */
  ledger: LedgerRule[];
  /** The hand-written part to keep: the file on disk as parsed, or null (take the last written version). */
  base: ConfigDocument | null;
  /** What the check found, as the render output records it. */
  drift: Pick<DriftReport, 'status' | 'editedManaged' | 'addedUnmanaged' | 'removedUnmanaged'>;
  /** Edits to write into the route ledger before the render is written. */
  adopted: AdoptedEdit[];
  reports: IngressReport[];
  /** Set when the file on disk was edited into something cloudflared would refuse: nothing may be written. */
  refused: TunnelManagerError | null;
}

/** The ledger rule an edit takes over, or why it stays the ledger's (`keep`). */
function adoptedRule(edit: ManagedRuleEdit, owner: LedgerRule | null, policy: DriftPolicy): { keep: string } | { rule: LedgerRule; edit: AdoptedEdit } {
  if (!owner) return { keep: 'removed: the route is no longer in the ledger' };
  if (policy === 'keep-ledger') return { keep: 'restored-ledger-version' };
  if (edit.after === null) return { keep: 'restored-ledger-version: removing a route takes `route delete`, not a file edit' };
  const after: IngressRule = edit.after;
  const service = String(after.service);
  const originRequest = isRecord(after.originRequest) ? after.originRequest : null;
  const targetReason = `adopted from a hand edit of config.yml (was ${owner.service})`;
  return {
    rule: { ...owner, service, originRequest, targetReason },
    edit: { hostname: owner.hostname, path: owner.path ?? null, project: owner.project, service, originRequest, targetReason },
  };
}

export class DriftCheck {
  /** The disk content we last reported drift for, so one edit is reported once (forgotten after each write). */
  private lastReportedDisk: string | null = null;
  /** The loader's write count when `lastReportedDisk` was last set or forgotten. */
  private writesSeen = 0;
  /** The shadowed rules we last reported, so a standing problem is reported once. */
  private lastReportedShadows = '[]';

  constructor(
    private readonly configPath: string,
    readonly policy: DriftPolicy = 'keep-ledger',
  ) {}

  /**
   * Compares the file on disk with the version last written, and applies the policy to `ledger` (not changed).
   * `writes`: the loader's write count; a version written since the last check makes an edit seen again a new one.
   */
  check(disk: { lastWritten: string | null; onDisk: string | null; writes: number }, ledger: readonly LedgerRule[]): DriftOutcome {
    const { lastWritten, onDisk } = disk;
    if (disk.writes !== this.writesSeen) {
      this.writesSeen = disk.writes;
      this.lastReportedDisk = null;
    }
    const drift = detectDrift(lastWritten, onDisk);
    const firstReport = onDisk !== this.lastReportedDisk;
    const found = { status: drift.status, editedManaged: drift.editedManaged, addedUnmanaged: drift.addedUnmanaged, removedUnmanaged: drift.removedUnmanaged };
    const outcome: DriftOutcome = { ledger: [...ledger], base: drift.disk, drift: found, adopted: [], reports: [], refused: null };
    if (drift.status === 'none') return outcome;
    this.lastReportedDisk = onDisk;
    if (drift.status === 'invalid') {
      if (firstReport) outcome.reports.push(this.invalidEditReport(drift));
      return { ...outcome, refused: this.refusal(drift) };
    }
    if (drift.status === 'missing') {
      if (firstReport) outcome.reports.push(this.missingReport());
      return outcome;
    }
    this.applyPolicy(drift, outcome, firstReport);
    return outcome;
  }

  private applyPolicy(drift: DriftReport, outcome: DriftOutcome, firstReport: boolean): void {
    for (const edit of drift.editedManaged) {
      const index = outcome.ledger.findIndex((rule) => ruleKey(rule.hostname, rule.path) === ruleKey(edit.hostname, edit.path));
      const owner = outcome.ledger[index] ?? null;
      const decision = adoptedRule(edit, owner, this.policy);
      if ('rule' in decision) {
        outcome.ledger[index] = decision.rule;
        outcome.adopted.push(decision.edit);
      }
      if (!firstReport) continue;
      const resolution = 'keep' in decision ? decision.keep : 'adopted-edit';
      const data = { hostname: edit.hostname, path: edit.path, before: edit.before, after: edit.after, policy: this.policy, resolution };
      outcome.reports.push({
        event: { kind: 'ingress.managed_rule_edited', project: owner?.project ?? '*', data },
        audit: { action: 'ingress.drift', target: edit.hostname, outcome: 'ok', errorCode: null, details: { ...data, project: owner?.project ?? null } },
      });
    }
    if (firstReport && (drift.addedUnmanaged.length > 0 || drift.removedUnmanaged.length > 0)) {
      const data = { added: drift.addedUnmanaged, removed: drift.removedUnmanaged, resolution: 'kept-as-unmanaged' };
      outcome.reports.push({
        event: { kind: 'ingress.unmanaged_rules_changed', project: '*', data },
        audit: { action: 'ingress.drift', target: this.configPath, outcome: 'ok', errorCode: null, details: data },
      });
    }
  }

  private missingReport(): IngressReport {
    const data = { path: this.configPath, resolution: 'rewritten-from-last-version' };
    return { event: { kind: 'ingress.file_missing', project: '*', data }, audit: { action: 'ingress.drift', target: this.configPath, outcome: 'ok', errorCode: null, details: data } };
  }

  private invalidEditReport(drift: DriftReport): IngressReport {
    const data = { path: this.configPath, issues: drift.issues, parseError: drift.parseError };
    return {
      event: { kind: 'ingress.hand_edit_invalid', project: '*', data },
      audit: { action: 'ingress.drift', target: this.configPath, outcome: 'error', errorCode: 'CONFIG_FILE_DRIFT', details: { ...data, resolution: 'left-alone' } },
    };
  }

  private refusal(drift: DriftReport): TunnelManagerError {
    const issues = drift.parseError ? drift.parseError.message : formatIngressIssues(drift.issues);
    const fix = drift.parseError ? drift.parseError.fix : (drift.issues[0]?.fix ?? 'see the issues above');
    return new TunnelManagerError({
      code: 'CONFIG_FILE_DRIFT',
      message: `${this.configPath} was edited by hand and cloudflared would refuse it, so tunnel-manager will not overwrite it: ${issues}`,
      fix: `Fix the file by hand (${fix}), or restore a version with \`tunnel-manager config history\` then \`tunnel-manager config rollback <commit>\`. Changes wait until then.`,
      details: { path: this.configPath, issues: drift.issues, parseError: drift.parseError },
    });
  }

  /** Hand-written rules that hide a managed one, each reported once while it stands. */
  shadowReports(generated: GeneratedConfig, ledger: readonly LedgerRule[]): IngressReport[] {
    const shadows = JSON.stringify(generated.shadowed);
    if (shadows === this.lastReportedShadows) return [];
    this.lastReportedShadows = shadows;
    return generated.shadowed.map((shadow) => ({
      event: {
        kind: 'ingress.rule_shadowed',
        project: ledger.find((rule) => ruleKey(rule.hostname, rule.path) === ruleKey(shadow.hostname, shadow.path))?.project ?? '*',
        data: {
          hostname: shadow.hostname,
          path: shadow.path,
          byRule: describeRule(shadow.byIndex, generated.config.ingress[shadow.byIndex] ?? { service: '' }),
          fix: `Move the hand-written rule ingress[${shadow.byIndex}] below, or narrow it, so ${shadow.hostname} reaches its own rule.`,
        },
      },
    }));
  }
}
