import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigGit, LAST_GOOD_TAG } from '../../../src/cloudflared/ingress/config-git.ts';

// A machine with no git identity at all: no global or system config.
const savedEnv = { ...process.env };
beforeAll(() => {
  process.env.GIT_CONFIG_GLOBAL = '/dev/null';
  process.env.GIT_CONFIG_NOSYSTEM = '1';
  delete process.env.GIT_AUTHOR_NAME;
  delete process.env.GIT_AUTHOR_EMAIL;
  delete process.env.GIT_COMMITTER_NAME;
  delete process.env.GIT_COMMITTER_EMAIL;
});
afterAll(() => {
  process.env = savedEnv;
});

let dir: string;
let configPath: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tm-git-'));
  configPath = join(dir, 'config.yml');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const git = (...args: string[]): string => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();

describe('ConfigGit (real repository)', () => {
  it('creates the repository and commits on a machine with no git identity', async () => {
    const repo = new ConfigGit({ configPath });
    await repo.ensureRepository();
    await writeFile(configPath, 'ingress:\n  - service: http_status:404\n');
    const commit = await repo.commit('ingress: add app.example.com (project alpha → http://localhost:3000)');
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    expect(git('log', '-1', '--format=%an <%ae>|%s')).toBe('tunnel-manager <tunnel-manager@localhost>|ingress: add app.example.com (project alpha → http://localhost:3000)');
    expect(commit).toBe(git('rev-parse', 'HEAD'));
    expect(await repo.commit('nothing changed')).toBeNull();
    // Later versions commit the tracked file without staging it first; the id is still HEAD's.
    await writeFile(configPath, 'ingress:\n  - service: http_status:503\n');
    const second = await repo.commit('second');
    expect(second).toBe(git('rev-parse', 'HEAD'));
    expect(second).not.toBe(commit);
    expect(git('show', 'HEAD:config.yml')).toBe('ingress:\n  - service: http_status:503');
    expect(git('status', '--porcelain')).toBe('');
  });

  it('never lets credentials into history, whatever their name', async () => {
    const credentials = join(dir, '6ff42ae2-765d-4adf-8112-31c55c1551ef.json');
    await writeFile(credentials, '{"AccountTag":"x","TunnelSecret":"c2VjcmV0"}');
    await writeFile(join(dir, 'cert.pem'), '-----BEGIN PRIVATE KEY-----\n');
    await writeFile(join(dir, 'tunnel-creds'), 'secret');
    const repo = new ConfigGit({ configPath, credentialsFile: join(dir, 'tunnel-creds') });
    await repo.ensureRepository();
    for (let n = 0; n < 3; n += 1) {
      await writeFile(configPath, `# v${n}\ningress:\n  - service: http_status:404\n`);
      await repo.commit(`v${n}`);
    }
    git('add', '-A'); // even a careless `git add -A` by a person picks up nothing secret
    expect(await repo.trackedPathsInHistory()).toEqual(['.gitignore', 'config.yml']);
    expect(git('ls-files', '--cached').split('\n').sort()).toEqual(['.gitignore', 'config.yml']);
    const ignore = await readFile(join(dir, '.gitignore'), 'utf8');
    expect(ignore).toContain('*.json');
    expect(ignore).toContain('cert.pem');
    expect(ignore).toContain('tunnel-creds');
  });

  it('lists history newest first and shows any version', async () => {
    const repo = new ConfigGit({ configPath });
    await repo.ensureRepository();
    const commits: string[] = [];
    for (let n = 1; n <= 3; n += 1) {
      await writeFile(configPath, `# version ${n}\ningress:\n  - service: http_status:404\n`);
      commits.push((await repo.commit(`ingress: ${n} changes\n\n- add a${n}.example.com (project p)`)) as string);
    }
    await repo.markLastGood(commits[1]);
    const history = await repo.history();
    expect(history.map((version) => version.commit)).toEqual([...commits].reverse());
    expect(history[0]?.subject).toBe('ingress: 3 changes');
    expect(history[0]?.body).toBe('- add a3.example.com (project p)');
    expect(history.map((version) => version.lastGood)).toEqual([false, true, false]);
    expect(await repo.show((commits[0] as string).slice(0, 8))).toContain('# version 1');
    expect((await repo.lastGood())?.content).toContain('# version 2');
    expect(git('rev-parse', LAST_GOOD_TAG)).toBe(commits[1]);
    await expect(repo.show('deadbeef')).rejects.toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('commit'), fix: expect.stringContaining('config history') });
    await expect(repo.show('--output=/tmp/x')).rejects.toMatchObject({ code: 'INPUT_INVALID' });
  });

  it('marks the last good version as git itself would, also over a packed tag', async () => {
    const repo = new ConfigGit({ configPath });
    await repo.ensureRepository();
    const commits: string[] = [];
    for (let n = 1; n <= 2; n += 1) {
      await writeFile(configPath, `# version ${n}\ningress:\n  - service: http_status:404\n`);
      commits.push((await repo.commit(`v${n}`)) as string);
    }
    await repo.markLastGood(commits[0]);
    expect(git('tag', '--list')).toBe(LAST_GOOD_TAG);
    expect(git('rev-parse', LAST_GOOD_TAG)).toBe(commits[0]);
    git('pack-refs', '--all'); // the tag now lives in packed-refs: the loose ref written next must win
    await repo.markLastGood(commits[1]);
    expect(git('rev-parse', LAST_GOOD_TAG)).toBe(commits[1]);
    expect((await repo.lastGood())?.commit).toBe(commits[1]);
    expect(git('fsck', '--no-progress')).toBe('');
    expect(existsSync(join(dir, '.git', 'refs', 'tags', `${LAST_GOOD_TAG}.lock`))).toBe(false);
  });

  it('marks the last good version over a lock a killed writer left behind; a lock in use is left to its holder', async () => {
    const repo = new ConfigGit({ configPath });
    await repo.ensureRepository();
    await writeFile(configPath, 'ingress:\n  - service: http_status:404\n');
    const commit = (await repo.commit('v1')) as string;
    const lock = join(dir, '.git', 'refs', 'tags', `${LAST_GOOD_TAG}.lock`);
    // A manager SIGKILLed between writing the lock and renaming it, a minute ago (seen in the chaos test: the next
    // start then failed with GIT_FAILED, "cannot lock ref").
    await writeFile(lock, `${commit}\n`);
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await utimes(lock, aMinuteAgo, aMinuteAgo);
    await repo.markLastGood(commit);
    expect(git('rev-parse', LAST_GOOD_TAG)).toBe(commit);
    expect(existsSync(lock)).toBe(false);
    // A lock written just now is someone's at work: not taken, and the mark fails as git's would.
    await writeFile(lock, `${commit}\n`);
    await expect(repo.markLastGood(commit)).rejects.toMatchObject({ code: 'GIT_FAILED' });
    expect(existsSync(lock)).toBe(true);
  });

  it("runs git's housekeeping after each commit, not inside it, and before the next write", async () => {
    const repo = new ConfigGit({ configPath });
    await repo.ensureRepository();
    await writeFile(configPath, '# version 1\ningress:\n  - service: http_status:404\n');
    await repo.commit('v1'); // the first version is staged once; the traced ones below are commits of a tracked file
    await repo.markLastGood(); // and its housekeeping has run before the trace starts
    // GIT_TRACE makes every git process say what it runs: a commit that starts `git maintenance` itself shows it as
    // a run_command; ours runs it afterwards as a command of its own.
    const trace = join(dir, 'git-trace.log');
    const saved = process.env.GIT_TRACE;
    process.env.GIT_TRACE = trace;
    try {
      const commits: string[] = [];
      for (let n = 2; n <= 3; n += 1) {
        await writeFile(configPath, `# version ${n}\ningress:\n  - service: http_status:404\n`);
        commits.push((await repo.commit(`v${n}`)) as string);
      }
      await repo.markLastGood(commits[1]); // waits for the last housekeeping run
      const order = (await readFile(trace, 'utf8')).split('\n').flatMap((line) => {
        if (/run_command: .*git maintenance/.test(line)) return ['maintenance inside commit'];
        if (/built-in: git commit /.test(line)) return ['commit'];
        if (/built-in: git maintenance run --auto --quiet/.test(line)) return ['maintenance'];
        return [];
      });
      expect(order).toEqual(['commit', 'maintenance', 'commit', 'maintenance']);
      expect(git('rev-parse', LAST_GOOD_TAG)).toBe(commits[1]);
    } finally {
      if (saved === undefined) delete process.env.GIT_TRACE;
      else process.env.GIT_TRACE = saved;
    }
  });
});
