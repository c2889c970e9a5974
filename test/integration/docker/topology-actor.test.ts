import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { createActor, type Actor } from 'xstate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topologyMachine, type TopologyEmitted } from '../../../machines/topology.machine.ts';
import { changeSetOf, topologyActors } from '../../../src/app/effects/topology-effects.ts';
import { detectTargetDrift } from '../../../src/docker/topology-drift.ts';
import { TopologyTracker, type TopologyChangeSet } from '../../../src/docker/topology-tracker.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { DockerRepository } from '../../../src/store/docker-repository.ts';
import { DockerTestScope, dockerForTests, ensureTestImage } from '../../helpers/docker.ts';

/**
 * The topology actor running live against the engine: start, stop, network connect/disconnect,
 * rename and remove a container, and watch the diffs arrive (and land in SQLite).
 */

const docker = await dockerForTests('Docker topology actor');

type Changed = Extract<TopologyEmitted, { type: 'topology.changed' }>;

describe.skipIf(docker === null)('topology actor, live', () => {
  const scope = new DockerTestScope(docker!, 'tmtop');
  const dir = mkdtempSync(join(tmpdir(), 'tm-topology-'));
  let db: Database;
  let repository: DockerRepository;
  let tracker: TopologyTracker;
  let actor: Actor<typeof topologyMachine>;
  const changes: Changed[] = [];
  let first = '';
  let second = '';
  let firstSubnet = '';
  const serviceName = scope.name('svc');
  const renamedName = scope.name('svc-renamed');
  const cloudflaredName = scope.name('cloudflared');

  /** Waits until a change whose summary has a line matching `pattern` arrives after `since`; returns it. */
  async function changeMatching(pattern: RegExp, since: number, timeoutMs = 10_000): Promise<Changed> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = changes.slice(since).find((c) => c.update.summary.some((line) => pattern.test(line)));
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no topology change matching ${pattern} within ${timeoutMs} ms; saw:\n${changes.slice(since).flatMap((c) => c.update.summary).join('\n')}`);
  }

  beforeAll(async () => {
    await ensureTestImage(docker!);
    const firstNetwork = await scope.createNetwork('first');
    firstSubnet = firstNetwork.subnet;
    first = firstNetwork.name;
    second = (await scope.createNetwork('second')).name;
    await scope.createContainer({ name: cloudflaredName, cmd: ['sleep', '3600'], networks: [first] });
    db = openDatabase(join(dir, 'tm.db')).db;
    repository = new DockerRepository(db);
    tracker = new TopologyTracker(docker!, repository);
    actor = createActor(topologyMachine.provide(topologyActors(docker!, tracker)), { input: { resyncIntervalMs: 600_000 } });
    actor.on('topology.changed', (event) => changes.push(event));
    actor.start();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('topology actor did not reach live within 15 s')), 15_000);
      const sub = actor.subscribe((snapshot) => {
        if (snapshot.hasTag('available')) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve();
        }
      });
    });
  });

  afterAll(async () => {
    actor?.stop();
    db?.close();
    rmSync(dir, { recursive: true, force: true });
    await scope.cleanup();
  });

  it('starts from a full sync that includes the networks it will watch', () => {
    const initial = changes[0];
    expect(initial).toMatchObject({ full: true, reason: 'initial' });
    const names = tracker.current().networks.map((n) => n.name);
    expect(names).toEqual(expect.arrayContaining([first, second, 'bridge']));
    expect(repository.load().networks.find((n) => n.name === first)).toMatchObject({ subnet: firstSubnet, driver: 'bridge' });
  });

  it('sees a container created and started, then stopped and started again', async () => {
    let mark = changes.length;
    await scope.createContainer({ name: serviceName, cmd: scope.httpd(), networks: [first] });
    await changeMatching(new RegExp(`container ${serviceName} (created \\(running\\)|created → running|created \\(created\\))`), mark);
    const running = await changeMatching(new RegExp(`container ${serviceName} .*running`), mark);
    expect(running.full).toBe(false);
    expect(tracker.current().containers.find((c) => c.name === serviceName)?.state).toBe('running');

    mark = changes.length;
    await docker!.getContainer(serviceName).stop({ t: 0 });
    await changeMatching(new RegExp(`container ${serviceName} running → exited`), mark);
    expect(repository.load().containers.find((c) => c.name === serviceName)?.state).toBe('exited');

    mark = changes.length;
    await docker!.getContainer(serviceName).start();
    await changeMatching(new RegExp(`container ${serviceName} exited → running`), mark);
  });

  it('sees network connect and disconnect', async () => {
    let mark = changes.length;
    await docker!.getNetwork(second).connect({ Container: serviceName });
    const joined = await changeMatching(new RegExp(`container ${serviceName} joined ${second}`), mark);
    const set = changeSetOf(joined.update);
    expect(set?.diff.containers.changed.find((c) => c.name === serviceName)?.fields).toContain('networks');
    expect(repository.load().containers.find((c) => c.name === serviceName)?.networks.map((m) => m.networkName).sort()).toEqual([first, second].sort());

    mark = changes.length;
    await docker!.getNetwork(second).disconnect({ Container: serviceName });
    await changeMatching(new RegExp(`container ${serviceName} left ${second}`), mark);
  });

  it('sees a rename, and drift detection proposes the new name for a route that used the old one', async () => {
    const mark = changes.length;
    await docker!.getContainer(serviceName).rename({ name: renamedName });
    const renamed = await changeMatching(new RegExp(`container ${serviceName} renamed to ${renamedName}`), mark);
    const set = changeSetOf(renamed.update) as TopologyChangeSet;
    const findings = detectTargetDrift({
      routes: [{ hostname: 'svc.example.test', project: 'consilio', service: `http://${serviceName}:80` }],
      before: set.before,
      after: set.after,
      cloudflared: { containerName: cloudflaredName },
    });
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ cause: 'container-renamed', proposal: { ok: true, target: `http://${renamedName}:80` } });
    expect(findings[0]!.event).toMatchObject({ kind: 'route.target_drift', project: 'consilio' });
  });

  it('sees the container removed, in memory and in SQLite', async () => {
    const mark = changes.length;
    await docker!.getContainer(renamedName).remove({ force: true });
    await changeMatching(new RegExp(`container ${renamedName} removed`), mark);
    expect(tracker.current().containers.some((c) => c.name === renamedName)).toBe(false);
    expect(repository.load().containers.some((c) => c.name === renamedName)).toBe(false);
  });

  it('a full resync on request finds nothing new when the events were all applied', async () => {
    const mark = changes.length;
    const before = tracker.current();
    actor.send({ type: 'RESYNC' });
    await new Promise<void>((resolve) => {
      const sub = actor.subscribe((snapshot) => {
        if (snapshot.matches({ live: 'synced' }) && snapshot.context.syncs >= 2) {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    const ours = changes.slice(mark).flatMap((c) => c.update.summary).filter((line) => line.includes(scope.id));
    expect(ours).toEqual([]);
    expect(tracker.current().containers.filter((c) => c.name.startsWith(scope.id)).map((c) => c.name))
      .toEqual(before.containers.filter((c) => c.name.startsWith(scope.id)).map((c) => c.name));
  });
});

describe('topology actor without an engine', () => {
  it('goes unavailable, says why, and retries on its backoff schedule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-topology-down-'));
    const nowhere = new Dockerode({ socketPath: join(dir, 'no-docker.sock') });
    const tracker = new TopologyTracker(nowhere);
    const actor = createActor(topologyMachine.provide(topologyActors(nowhere, tracker)), { input: { retryDelaysMs: [20, 40] } });
    const unavailable: Extract<TopologyEmitted, { type: 'topology.unavailable' }>[] = [];
    actor.on('topology.unavailable', (event) => unavailable.push(event));
    actor.start();
    try {
      const deadline = Date.now() + 5_000;
      while (unavailable.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(unavailable.map((e) => e.attempt).slice(0, 3)).toEqual([1, 2, 3]);
      expect(unavailable[0]!.error).toMatch(/Docker engine did not answer/);
      expect(actor.getSnapshot().context.lastError).toMatch(/no-docker\.sock|ENOENT/);
    } finally {
      actor.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
