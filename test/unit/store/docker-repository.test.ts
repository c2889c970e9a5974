import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { DockerRepository } from '../../../src/store/docker-repository.ts';
import { container, network, topology } from '../docker/topology-fixtures.ts';

describe('DockerRepository', () => {
  let dir: string;
  let db: Database;
  let repository: DockerRepository;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tm-docker-repo-'));
    db = openDatabase(join(dir, 'tm.db')).db;
    repository = new DockerRepository(db);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const web = container('web', ['edge', 'app'], {
    labels: { 'com.example': 'x' },
    extraHosts: ['host.docker.internal:host-gateway'],
    ports: [
      { containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 3100 },
      { containerPort: 443, protocol: 'tcp', hostIp: null, hostPort: null },
    ],
  });

  it('round-trips a topology through the four tables (commands are not kept)', () => {
    const stored = topology([web, container('api', ['app'], { state: 'exited' })], [network('app', { subnet: '10.231.1.0/24', internal: true }), network('edge')]);
    repository.replaceAll(stored, 1_000);
    const loaded = repository.load();
    expect(loaded.networks).toEqual(stored.networks);
    expect(loaded.containers.map((c) => c.name)).toEqual(['api', 'web']);
    expect(loaded.containers[1]).toEqual({ ...web, command: null });
    expect(repository.lastSeenAt()).toBe(1_000);
  });

  it('replaceAll drops what is gone, with its memberships and ports', () => {
    repository.replaceAll(topology([web]), 1_000);
    repository.replaceAll(topology([container('api', ['app'])]), 2_000);
    expect(repository.load().containers.map((c) => c.name)).toEqual(['api']);
    expect(db.prepare("SELECT COUNT(*) AS n FROM container_ports WHERE container_id = 'web-id'").get()).toEqual({ n: 0 });
    expect(db.prepare("SELECT COUNT(*) AS n FROM container_networks WHERE container_id = 'web-id'").get()).toEqual({ n: 0 });
  });

  it('upserts and removes single containers and networks', () => {
    repository.replaceAll(topology([web]), 1_000);
    repository.upsertContainer({ ...web, name: 'web-v2', networks: web.networks.slice(0, 1), ports: [] }, 2_000);
    repository.upsertNetwork(network('extra'), 2_000);
    let loaded = repository.load();
    expect(loaded.containers).toHaveLength(1);
    expect(loaded.containers[0]).toMatchObject({ name: 'web-v2', ports: [], networks: [{ networkName: 'app' }] });
    expect(loaded.networks.map((n) => n.name)).toContain('extra');
    repository.removeContainer('web-id');
    repository.removeNetwork('extra-id');
    loaded = repository.load();
    expect(loaded.containers).toEqual([]);
    expect(loaded.networks.map((n) => n.name)).not.toContain('extra');
  });
});
