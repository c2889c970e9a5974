import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import type { IngressEmitted, ReloadInput } from '../../../machines/ingress.machine.ts';
import { ConfigDocument } from '../../../src/cloudflared/ingress/config-document.ts';
import type { DriftPolicy } from '../../../src/cloudflared/ingress/ingress-drift.ts';
import type { LedgerRule } from '../../../src/cloudflared/ingress/ingress-render.ts';
import { requestIngressChange, rollbackIngress, startIngressActor, type AdoptedEdit, type IngressActor, type IngressReporter } from '../../../src/app/effects/ingress-effects.ts';
import { DriftCheck } from '../../../src/cloudflared/ingress/ingress-drift-check.ts';
import { IngressLoader, readConfigHistory } from '../../../src/cloudflared/ingress/ingress-loader.ts';
import { validateCloudflaredConfig } from '../../../src/cloudflared/ingress/ingress-validation.ts';
import { waitUntil } from '../../helpers/cli.ts';

const savedEnv = { ...process.env };
beforeAll(() => {
  process.env.GIT_CONFIG_GLOBAL = '/dev/null';
  process.env.GIT_CONFIG_NOSYSTEM = '1';
});
afterAll(() => {
  process.env = savedEnv;
});

const HAND_WRITTEN = `# cloudflared on vm-7
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: CREDENTIALS

ingress:
  # Grafana, by hand
  - hostname: grafana.example.com
    service: http://localhost:3000   # keep me
  - service: http_status:404
`;

/** A reload we control: every call waits for the test to open its gate (or resolves at once in auto mode). */
class ControlledReload {
  readonly calls: { input: ReloadInput; file: string }[] = [];
  private gates: (() => void)[] = [];
  auto = true;
  /** Reloads fail while the file contains this text (cloudflared refusing the file). */
  failWhenFileContains: string | null = null;
  /** Whether a failed reload says the previous process kept serving (a replica that never took over). */
  keptRunning = false;

  constructor(private readonly configPath: string) {}

  readonly reload = async (input: ReloadInput): Promise<void> => {
    const file = await readFile(this.configPath, 'utf8');
    this.calls.push({ input, file });
    if (!this.auto) await new Promise<void>((resolve) => this.gates.push(resolve));
    if (this.failWhenFileContains && file.includes(this.failWhenFileContains)) {
      throw Object.assign(new Error('cloudflared exited: error parsing ingress'), { code: 'RELOAD_FAILED', fix: 'see the cloudflared log', details: { keptRunning: this.keptRunning } });
    }
  };

  waiting(): number {
    return this.gates.length;
  }

  open(): void {
    this.gates.shift()?.();
  }
}

interface Harness {
  loader: IngressLoader;
  actor: IngressActor;
  stop: () => void;
  reload: ControlledReload;
  ledger: LedgerRule[];
  reports: { events: { kind: string; project: string; data: Record<string, unknown> }[]; audits: Parameters<IngressReporter['audit']>[0][] };
  adopted: AdoptedEdit[];
  emitted: IngressEmitted[];
}

let dir: string;
let configPath: string;
let harness: Harness | null = null;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tm-ingress-'));
  configPath = join(dir, 'config.yml');
  await writeFile(join(dir, 'creds.json'), '{"TunnelSecret":"c2VjcmV0"}');
  await writeFile(configPath, HAND_WRITTEN.replace('CREDENTIALS', join(dir, 'creds.json')), { mode: 0o640 });
});
afterEach(async () => {
  harness?.stop();
  harness = null;
  await rm(dir, { recursive: true, force: true });
});

async function start(options: { driftPolicy?: DriftPolicy; watch?: boolean } = {}): Promise<Harness> {
  const reports: Harness['reports'] = { events: [], audits: [] };
  const adopted: AdoptedEdit[] = [];
  const ledger: LedgerRule[] = [];
  const credentialsFile = join(dir, 'creds.json');
  const loader = await IngressLoader.open({ configPath, credentialsFile });
  const reload = new ControlledReload(configPath);
  const { actor, stop } = startIngressActor(
    {
      loader,
      drift: new DriftCheck(configPath, options.driftPolicy ?? 'keep-ledger'),
      newFile: { credentialsFile },
      readLedger: () => ledger,
      reporter: { event: (event) => reports.events.push(event), audit: (entry) => reports.audits.push(entry) },
      adoptEdit: (edit) => {
        adopted.push(edit);
        const index = ledger.findIndex((rule) => rule.hostname === edit.hostname);
        if (index !== -1) ledger[index] = { ...(ledger[index] as LedgerRule), service: edit.service, targetReason: edit.targetReason };
      },
      reload: reload.reload,
    },
    { watch: options.watch ?? false },
  );
  const emitted: IngressEmitted[] = [];
  for (const type of ['ingress.applied', 'ingress.failed', 'ingress.restored', 'ingress.restore_failed'] as const) actor.on(type, (event) => emitted.push(event));
  harness = { loader, actor, stop, reload, ledger, reports, adopted, emitted };
  return harness;
}

function route(n: number, project = 'alpha'): LedgerRule {
  return { hostname: `app${n}.example.com`, service: `http://localhost:${3100 + n}`, project, targetReason: `cloudflared runs on the host; port ${3100 + n} is published on 127.0.0.1` };
}

async function add(h: Harness, rule: LedgerRule, requestId = rule.hostname): Promise<IngressEmitted> {
  h.ledger.push(rule);
  return requestIngressChange(h.actor, { hostname: rule.hostname, action: 'add', project: rule.project, target: rule.service, requestId });
}

const git = (...args: string[]): string => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();

describe('ingress cycle: real files, real git, the real machine', () => {
  it('adds a route: hand-written rules kept, one commit naming hostname, action, project and target, one reload', async () => {
    const h = await start();
    const outcome = await add(h, route(1));
    expect(outcome).toMatchObject({ type: 'ingress.applied', changed: true, reloaded: true });
    const file = await readFile(configPath, 'utf8');
    expect(file.startsWith(HAND_WRITTEN.replace('CREDENTIALS', join(dir, 'creds.json')).split('  - service: http_status:404')[0] as string)).toBe(true);
    expect(file).toContain('# tunnel-manager: managed rule for app1.example.com · owner: project alpha');
    expect(validateCloudflaredConfig(ConfigDocument.parse(file).model())).toEqual([]);
    expect(h.reload.calls).toHaveLength(1);
    expect(git('log', '-1', '--format=%s')).toBe('ingress: add app1.example.com (project alpha → http://localhost:3101)');
    expect((outcome as { commit: string }).commit).toBe(git('rev-parse', 'HEAD'));
    expect(git('rev-parse', 'tunnel-manager-last-good')).toBe(git('rev-parse', 'HEAD'));
    expect(git('ls-files')).toBe('.gitignore\nconfig.yml');
  });

  it('20 changes arriving during one reload give at most 2 reloads, and every rule lands', async () => {
    const h = await start();
    h.reload.auto = false;
    const first = add(h, route(0));
    await waitFor(h.actor, (snapshot) => snapshot.matches('reloading'));
    const rest = Array.from({ length: 20 }, (_unused, n) => add(h, route(n + 1, n % 2 ? 'beta' : 'alpha')));
    expect(h.actor.getSnapshot().context.pending).toHaveLength(20);
    h.reload.auto = true;
    h.reload.open();
    await first;
    const outcomes = await Promise.all(rest);
    expect(h.reload.calls.length).toBeLessThanOrEqual(2);
    expect(new Set(outcomes.map((outcome) => (outcome as { commit: string }).commit)).size).toBe(1);
    const rules = ConfigDocument.parse(await readFile(configPath, 'utf8')).model().ingress;
    expect(rules).toHaveLength(1 + 21 + 1);
    // Too many names for one line: counted, with the first names and every project; the body lists each one.
    expect(git('log', '-1', '--format=%s')).toBe('ingress: add 20 rules (app1.example.com, app10.example.com, …; project alpha, project beta)');
    const body = git('log', '-1', '--format=%b');
    for (let n = 1; n <= 20; n++) expect(body).toContain(`- add app${n}.example.com (project ${n % 2 ? 'alpha' : 'beta'} → http://localhost:${3100 + n})`);
  });

  it('a batch names every hostname and project it changes in the subject, not "N changes"', async () => {
    const h = await start();
    await add(h, route(1));
    await add(h, route(2, 'beta'));
    h.reload.auto = false;
    const first = add(h, route(3));
    await waitFor(h.actor, (snapshot) => snapshot.matches('reloading'));
    h.ledger.splice(0, 2); // app1 and app2 go,
    const removed = [
      requestIngressChange(h.actor, { hostname: 'app1.example.com', action: 'remove', project: 'alpha', requestId: 'r1' }),
      requestIngressChange(h.actor, { hostname: 'app2.example.com', action: 'remove', project: 'beta', requestId: 'r2' }),
    ];
    const added = [add(h, route(4, 'beta')), add(h, route(5))]; // app4 and app5 come, in one version.
    h.reload.auto = true;
    h.reload.open();
    await Promise.all([first, ...removed, ...added]);
    expect(git('log', '-1', '--format=%s')).toBe(
      'ingress: add app4.example.com (project beta), app5.example.com (project alpha); remove app1.example.com (project alpha), app2.example.com (project beta)',
    );
    expect(git('log', '-1', '--format=%b').split('\n')).toEqual([
      '- add app4.example.com (project beta → http://localhost:3104)',
      '- add app5.example.com (project alpha → http://localhost:3105)',
      '- remove app1.example.com (project alpha, was http://localhost:3101)',
      '- remove app2.example.com (project beta, was http://localhost:3102)',
    ]);
  });

  it('the same state twice writes nothing and reloads nothing', async () => {
    const h = await start();
    await add(h, route(1));
    const again = await requestIngressChange(h.actor, { hostname: 'app1.example.com', action: 'update', project: 'alpha', requestId: 'again' });
    expect(again).toMatchObject({ type: 'ingress.applied', changed: false, reloaded: false });
    expect(h.reload.calls).toHaveLength(1);
  });

  it('a reload that fails restores the last good file from git, reloads again and reports it', async () => {
    const h = await start();
    await add(h, route(1));
    const good = await readFile(configPath, 'utf8');
    h.reload.failWhenFileContains = 'app2.example.com';
    const outcome = await add(h, route(2));
    expect(outcome).toMatchObject({ type: 'ingress.restored', reloadError: { code: 'RELOAD_FAILED' } });
    expect(await readFile(configPath, 'utf8')).toBe(good);
    expect(h.reload.calls.map((call) => call.input.reason)).toEqual(['apply', 'apply', 'restore']);
    expect(git('log', '-1', '--format=%s')).toMatch(/^ingress: restore last good version [0-9a-f]{12}: remove app2\.example\.com \(project alpha, was http:\/\/localhost:3102\)$/);
    expect(git('log', '-1', '--format=%b')).toMatch(/^Why: reload of version [0-9a-f]{12} failed: cloudflared exited/);
  });

  it('commits a new version to git while cloudflared loads it, and answers with that commit', async () => {
    const h = await start();
    // A post-commit hook (git runs it even with --no-verify) holds the commit until the test lets it go.
    const hook = join(dir, '.git', 'hooks', 'post-commit');
    await mkdir(dirname(hook), { recursive: true });
    await writeFile(hook, `#!/bin/sh\ntouch "${dir}/hook-running"\nwhile [ ! -f "${dir}/hook-release" ]; do sleep 0.01; done\n`, { mode: 0o755 });
    const outcome = add(h, route(1));
    // The reload is asked for while the commit is still running.
    await waitUntil(() => existsSync(join(dir, 'hook-running')) || undefined, 20_000, 'the commit to run its post-commit hook', 10);
    await waitUntil(() => h.reload.calls.length === 1 || undefined, 20_000, 'the reload to be asked for', 10);
    expect(h.actor.getSnapshot().matches('reloading')).toBe(true);
    expect(existsSync(join(dir, 'hook-release'))).toBe(false); // so the commit is still running
    expect(h.reload.calls[0]?.file).toContain('app1.example.com');
    await writeFile(join(dir, 'hook-release'), '');
    const applied = await outcome;
    expect(applied).toMatchObject({ type: 'ingress.applied', reloaded: true });
    expect((applied as { commit: string }).commit).toBe(git('rev-parse', 'HEAD'));
    expect(git('log', '-1', '--format=%s')).toBe('ingress: add app1.example.com (project alpha → http://localhost:3101)');
    expect(git('rev-parse', 'tunnel-manager-last-good')).toBe(git('rev-parse', 'HEAD'));
  });

  it('a version git cannot record is undone like a refused one: the last good file is restored and loaded again', async () => {
    const h = await start();
    await add(h, route(1));
    const good = await readFile(configPath, 'utf8');
    const before = git('rev-parse', 'HEAD');
    const lock = join(dir, '.git', 'index.lock');
    await writeFile(lock, '');
    const outcome = await add(h, route(2));
    expect(outcome).toMatchObject({ type: 'ingress.restored', failedCommit: null, reloadError: { code: 'GIT_FAILED' } });
    expect(await readFile(configPath, 'utf8')).toBe(good);
    // cloudflared had loaded the version git could not record; it loads the restored one again.
    expect(h.reload.calls.map((call) => [call.input.reason, call.file.includes('app2.example.com')])).toEqual([
      ['apply', false],
      ['apply', true],
      ['restore', false],
    ]);
    // The restore itself could not be committed either (the lock is still held): the audit log says so.
    expect(h.reports.audits).toContainEqual(expect.objectContaining({ action: 'ingress.commit', outcome: 'error', errorCode: 'GIT_FAILED' }));
    expect(git('rev-parse', 'HEAD')).toBe(before);
    await rm(lock);
    h.ledger.splice(1);
    expect(await add(h, route(3))).toMatchObject({ type: 'ingress.applied', reloaded: true });
    expect(git('log', '-1', '--format=%s')).toBe('ingress: add app3.example.com (project alpha → http://localhost:3103)');
  });

  it('a refused replica left the old process serving: the last good file is restored without a second reload', async () => {
    const h = await start();
    await add(h, route(1));
    const good = await readFile(configPath, 'utf8');
    h.reload.failWhenFileContains = 'app2.example.com';
    h.reload.keptRunning = true;
    const outcome = await add(h, route(2));
    expect(outcome).toMatchObject({ type: 'ingress.restored', reloadError: { code: 'RELOAD_FAILED', keptRunning: true } });
    expect(await readFile(configPath, 'utf8')).toBe(good);
    expect(h.reload.calls.map((call) => call.input.reason)).toEqual(['apply', 'apply']);
    // The restored version is the last good one again: the next change reloads from it as usual.
    h.reload.failWhenFileContains = null;
    expect(await add(h, route(3))).toMatchObject({ type: 'ingress.applied', reloaded: true });
    expect(h.reload.calls.map((call) => call.input.reason)).toEqual(['apply', 'apply', 'apply']);
  });

  it('rollback restores the hand-written rules of an earlier version through validate → write → reload; managed rules stay those of the ledger', async () => {
    const h = await start();
    await add(h, route(1));
    const withOne = await readFile(configPath, 'utf8');
    const commitWithOne = git('rev-parse', 'HEAD');
    // After that version: a hand-written rule is added, and a second route.
    await writeFile(configPath, withOne.replace('  - service: http_status:404', '  - hostname: hand.example.com\n    service: http://localhost:7000\n  - service: http_status:404'));
    await add(h, route(2));
    const before = await readFile(configPath, 'utf8');
    expect(before).toContain('hostname: hand.example.com');
    expect(before).toContain('app2.example.com');

    const result = await rollbackIngress(h.actor, commitWithOne.slice(0, 10));
    expect(result.reloaded).toBe(true);
    const after = await readFile(configPath, 'utf8');
    // The hand-written part is as it was at that version…
    expect(after).not.toContain('hand.example.com');
    // …and both routes the ledger holds keep their rules: the ledger never lies after a rollback.
    expect(after).toContain('hostname: app1.example.com');
    expect(after).toContain('hostname: app2.example.com');
    expect(h.reload.calls).toHaveLength(3);
    const history = await readConfigHistory(configPath);
    expect(history[0]?.subject).toBe(`ingress: rollback to ${commitWithOne.slice(0, 12)}: remove hand.example.com (hand-written, was http://localhost:7000)`);
    expect(history[0]?.body).toBe('Why: the hand-written rules as they were at that version; managed rules from the route ledger');
    await expect(rollbackIngress(h.actor, 'no-such-commit')).rejects.toMatchObject({ code: 'INPUT_INVALID' });
  });

  it('drift, keep-ledger: an edited managed rule is reported and the ledger version written back', async () => {
    const h = await start({ driftPolicy: 'keep-ledger' });
    await add(h, route(1));
    const file = await readFile(configPath, 'utf8');
    await writeFile(configPath, file.replace('service: http://localhost:3101', 'service: http://localhost:9999'));
    await requestIngressChange(h.actor, { hostname: '*', action: 'file-edited', project: '*', requestId: 'edit' });
    expect(await readFile(configPath, 'utf8')).toBe(file);
    const event = h.reports.events.find((candidate) => candidate.kind === 'ingress.managed_rule_edited');
    expect(event).toMatchObject({ project: 'alpha', data: { hostname: 'app1.example.com', policy: 'keep-ledger', resolution: 'restored-ledger-version', after: { service: 'http://localhost:9999' } } });
    expect(h.reports.audits).toContainEqual(expect.objectContaining({ action: 'ingress.drift', target: 'app1.example.com', outcome: 'ok' }));
    expect(h.adopted).toEqual([]);
  });

  it('drift, adopt-edit: the edit is taken into the ledger and kept', async () => {
    const h = await start({ driftPolicy: 'adopt-edit' });
    await add(h, route(1));
    const file = await readFile(configPath, 'utf8');
    await writeFile(configPath, file.replace('service: http://localhost:3101', 'service: http://localhost:9999'));
    const outcome = await requestIngressChange(h.actor, { hostname: '*', action: 'file-edited', project: '*', requestId: 'edit' });
    expect(outcome).toMatchObject({ type: 'ingress.applied', reloaded: true });
    const now = await readFile(configPath, 'utf8');
    expect(now).toContain('    service: http://localhost:9999\n');
    expect(now).toContain('adopted from a hand edit of config.yml (was http://localhost:3101)');
    expect(h.adopted).toEqual([expect.objectContaining({ hostname: 'app1.example.com', project: 'alpha', service: 'http://localhost:9999' })]);
    expect(h.ledger[0]?.service).toBe('http://localhost:9999');
    expect(h.reports.events.find((candidate) => candidate.kind === 'ingress.managed_rule_edited')).toMatchObject({ data: { resolution: 'adopted-edit' } });
  });

  it('a rule added by hand is kept as unmanaged, committed and loaded', async () => {
    const h = await start();
    await add(h, route(1));
    const file = await readFile(configPath, 'utf8');
    const edited = file.replace('  # Grafana, by hand', '  - hostname: wiki.example.com\n    service: http://localhost:8000\n  # Grafana, by hand');
    await writeFile(configPath, edited);
    const outcome = await requestIngressChange(h.actor, { hostname: '*', action: 'file-edited', project: '*', requestId: 'edit' });
    expect(outcome).toMatchObject({ type: 'ingress.applied', changed: false, reloaded: true });
    expect(await readFile(configPath, 'utf8')).toBe(edited);
    expect(git('show', 'HEAD:config.yml')).toBe(edited.trimEnd());
    // Named, not "file-edited * (project *)".
    expect(git('log', '-1', '--format=%s')).toBe('ingress: hand edit of config.yml: add wiki.example.com (hand-written → http://localhost:8000)');
    expect(h.reports.events.find((event) => event.kind === 'ingress.unmanaged_rules_changed')).toMatchObject({ data: { added: [{ hostname: 'wiki.example.com' }] } });
  });

  it('an invalid hand edit is reported and never overwritten; fixing it lets changes through again', async () => {
    const h = await start();
    await add(h, route(1));
    const file = await readFile(configPath, 'utf8');
    const broken = file.replace('  - hostname: grafana.example.com', '  - hostname: grafana.example.com:3000');
    await writeFile(configPath, broken);
    const failed = await add(h, route(2));
    expect(failed).toMatchObject({ type: 'ingress.failed', stage: 'render', error: { code: 'CONFIG_FILE_DRIFT' } });
    expect((failed as { error: { fix: string } }).error.fix).toContain('rollback');
    expect(await readFile(configPath, 'utf8')).toBe(broken);
    const again = await requestIngressChange(h.actor, { hostname: '*', action: 'resync', project: '*', requestId: 'again' });
    expect(again.type).toBe('ingress.failed');
    expect(h.reports.events.filter((event) => event.kind === 'ingress.hand_edit_invalid')).toHaveLength(1);
    expect(h.reports.audits).toContainEqual(expect.objectContaining({ outcome: 'error', errorCode: 'CONFIG_FILE_DRIFT' }));
    expect(h.reload.calls).toHaveLength(1);

    await writeFile(configPath, file);
    const fixed = await requestIngressChange(h.actor, { hostname: 'app2.example.com', action: 'add', project: 'alpha', requestId: 'fixed' });
    expect(fixed).toMatchObject({ type: 'ingress.applied', reloaded: true });
    expect(await readFile(configPath, 'utf8')).toContain('app2.example.com');
  });

  it('the file watcher notices a hand edit and runs a cycle by itself', async () => {
    const h = await start({ watch: true });
    await add(h, route(1));
    const file = await readFile(configPath, 'utf8');
    await writeFile(configPath, file.replace('service: http://localhost:3101', 'service: http://localhost:9999'));
    await waitFor(h.actor, () => h.reports.events.some((event) => event.kind === 'ingress.managed_rule_edited'), { timeout: 5000 });
    await waitFor(h.actor, (snapshot) => snapshot.matches('idle') && h.emitted.length >= 2, { timeout: 5000 });
    expect(await readFile(configPath, 'utf8')).toBe(file);
  });
});
