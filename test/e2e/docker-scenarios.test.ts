import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/app/config/config.ts';
import { createLogger } from '../../src/app/config/logger.ts';
import { startTunnelManager as startService, type TunnelManager as Service } from '../../src/root/composition-root.ts';
import { STANDIN_CLOUDFLARED_BUNDLE } from '../../src/package-root.ts';
import { waitUntil } from '../helpers/cli.ts';
import { DockerTestScope, TEST_IMAGE, dockerForTests, ensureStandinImage, ensureTestImage } from '../helpers/docker.ts';
import { freePort } from '../helpers/standin-cloudflared.ts';
import { call, freePortInRange, mcpClient, projectPorts, reservedProjects, settled, startOrigin, startTestService, viaEdge } from '../helpers/service.ts';

/**
 * The four networking scenarios of a project that only knows its port, each through `tunnel_request_cname` against
 * a real Docker engine (docs/docker-targets.md, "The service behind a port"):
 *   1. a host process;                                   → http://localhost:PORT
 *   2. cloudflared in a container on the service's network → http://NAME:PORT, traffic through the edge
 *   3. a container that publishes the port;              → http://localhost:HOST_PORT
 *   4. an isolated container;                            → refused with the command that fixes it, nothing created.
 * Plus what the port alone cannot decide (two listeners), another project's container, and a service that does not
 * answer yet (refused, or published ahead with a warning and a notice when it answers); and what is not a candidate
 * at all: a container that listens on the number only inside its own network namespace, where cloudflared on the
 * host does not reach it at that port (beside a host server; or alone, running before the port was allocated).
 * Ports come from health-agent's range, which no other test file uses, in a block of ports each service here reserves
 * for itself (reservedProjects): containers here listen on them inside their own network namespace, and a test on
 * the host (of this suite or of another copy of it) must not find one of them behind its own port.
 */
const docker = await dockerForTests('the Docker scenarios through tunnel_request_cname');

interface Refusal { code: string; message: string; fix: string; details: Record<string, unknown> }
interface Published { target: string; reason: string; warning: string | null }

describe.skipIf(docker === null)('the four Docker scenarios through tunnel_request_cname', () => {
  const scope = new DockerTestScope(docker!, 'tmscn4');
  beforeAll(async () => {
    await ensureTestImage(docker!);
  }, 120_000);
  afterAll(async () => {
    await scope.cleanup();
  });

  /**
   * The service sees the container running (the topology actor follows Docker's events) and, given its port, the
   * service in it answers (so the manager's evidence is read after the service listens).
   */
  async function seen(client: Client, name: string, port?: number): Promise<void> {
    if (port !== undefined) await scope.untilAnswering(name, port);
    await waitUntil(async () => {
      const topology = await call<{ containers: { name: string; state: string }[] }>(client, 'tunnel_get_network_topology');
      return topology.data.containers.some((c) => c.name === name && c.state === 'running') || undefined;
    }, 20_000, `the topology to see ${name}`);
  }

  /** Nothing of a refused request exists anywhere: no record, no rule, no ledger row. */
  function nothingCreated(service: Service, configPath: string, hostname: string): void {
    expect(service.sandbox!.emulator.state().records.filter((r) => r.name === hostname)).toEqual([]);
    expect(readFileSync(configPath, 'utf8')).not.toContain(hostname);
    expect(service.backend.findRoute(hostname)).toBeUndefined();
  }

  describe('cloudflared on the host', () => {
    let env: Awaited<ReturnType<typeof startTestService>>;
    let agent: Client;
    const origins: Server[] = [];
    const allocated = new Set<number>();
    /** A port of health-agent's range free on the host and not allocated yet (containers here hold theirs inside, so
     * the ports here come from the first 80 % of the range, the ones below from the rest). */
    const allocate = async (purpose: string): Promise<number> => {
      const range = projectPorts(env.config, 'health-agent', [0, 0.8]);
      let port = await freePortInRange(...range);
      while (allocated.has(port)) port = await freePortInRange(...range);
      allocated.add(port);
      const result = await call<{ port: number }>(agent, 'port_allocate', { port, purpose });
      expect(result.isError, JSON.stringify(result.data)).toBe(false);
      return result.data.port;
    };

    beforeAll(async () => {
      env = await startTestService({ docker: { probeImage: TEST_IMAGE }, publishAhead: { checkSeconds: 1, noticeAfterMinutes: 60 } });
      agent = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens['health-agent']!);
    }, 120_000);
    afterAll(async () => {
      await agent?.close();
      for (const origin of origins) origin.close();
      await env?.stop();
    });

    it('1. a host process is reached at localhost:PORT, and the reason says a host process listens', async () => {
      const port = await allocate('host process');
      origins.push(await startOrigin(port, 'host-process'));
      const result = await call<Published>(agent, 'tunnel_request_cname', { subdomain: 's1', targetPort: port });
      expect(result.isError, JSON.stringify(result.data)).toBe(false);
      expect(result.data.target).toBe(`http://localhost:${port}`);
      expect(result.data.reason).toContain(`a host process listens on 127.0.0.1 port ${port}`);
      expect(result.data.warning).toBeNull();
      expect((await viaEdge(env.service.sandboxInfo!.edgeUrl, 's1.153.se')).body).toContain('hello from host-process');
    }, 60_000);

    it('3. a container that publishes the port is reached at localhost:HOST_PORT', async () => {
      const port = await allocate('published container');
      const name = scope.name('published');
      await scope.createContainer({ name, cmd: scope.httpd(80), ports: [{ containerPort: 80, hostPort: port }] });
      await seen(agent, name, 80);
      const result = await call<Published>(agent, 'tunnel_request_cname', { subdomain: 's3', targetPort: port });
      expect(result.isError, JSON.stringify(result.data)).toBe(false);
      expect(result.data.target).toBe(`http://localhost:${port}`);
      expect(result.data.reason).toContain(`container "${name}" publishes host port ${port}`);
      const response = await waitUntil(async () => {
        const r = await viaEdge(env.service.sandboxInfo!.edgeUrl, 's3.153.se');
        return r.status === 200 ? r : undefined;
      }, 10_000, 'the container to answer through the edge');
      expect(response.body).toContain('tunnel-manager test service');
    }, 60_000);

    it('4. an isolated container listening on the port is refused with -p, nothing is created, and the three tools agree', async () => {
      const port = await allocate('isolated container');
      const network = (await scope.createNetwork('iso-host')).name;
      const name = scope.name('isolated');
      await scope.createContainer({ name, cmd: scope.httpd(port), networks: [network] });
      await seen(agent, name, port);
      const refused = await call<Refusal>(agent, 'tunnel_request_cname', { subdomain: 's4', targetPort: port });
      expect(refused.isError).toBe(true);
      expect(refused.data.code).toBe('TARGET_UNREACHABLE');
      expect(refused.data.message).toContain(`container "${name}" listens on`);
      expect(refused.data.fix).toContain(`-p 127.0.0.1:${port}:${port}`);
      nothingCreated(env.service, env.config.cloudflared.configPath, 's4.153.se');

      // tunnel_check_connectivity and tunnel_recommend_config find the same service and say the same.
      for (const tool of ['tunnel_check_connectivity', 'tunnel_recommend_config']) {
        const view = await call<{ target: string | null; reachable: boolean; reason: string; recommendations: { command: string }[] }>(agent, tool, { targetPort: port });
        expect(view.isError, JSON.stringify(view.data)).toBe(false);
        expect(view.data).toMatchObject({ target: null, reachable: false, reason: refused.data.message });
        expect(view.data.recommendations.map((r) => r.command)).toContain(`-p 127.0.0.1:${port}:${port}`);
      }
    }, 60_000);

    it('a host server and an unrelated container listening on the port only inside its own namespace: the host target, also on a repeat (issue 27, item 4)', async () => {
      const port = await allocate('host and namespace');
      const name = scope.name('elsewhere');
      // Listens on the same number, but in its own network namespace: not on the host's port, which cloudflared uses.
      await scope.createContainer({ name, cmd: scope.httpd(port) });
      await seen(agent, name, port);
      origins.push(await startOrigin(port, 'host-beside-container'));
      for (const attempt of ['first', 'repeat']) {
        const result = await call<Published & { plan: string[] }>(agent, 'tunnel_request_cname', { subdomain: 'hostfirst', targetPort: port });
        expect(result.isError, `${attempt}: ${JSON.stringify(result.data)}`).toBe(false);
        expect(result.data.target).toBe(`http://localhost:${port}`);
        expect(result.data.reason).toContain(`a host process listens on 127.0.0.1 port ${port}`);
        expect(result.data.reason).toContain(`container "${name}" listens on port ${port} only where cloudflared does not reach it at that port`);
        if (attempt === 'repeat') expect(result.data.plan).toEqual(['already published: nothing to do']);
      }
      expect((await viaEdge(env.service.sandboxInfo!.edgeUrl, 'hostfirst.153.se')).body).toContain('hello from host-beside-container');
    }, 60_000);

    it('a port where only an unrelated container listens inside its own namespace is not taken for that container (issue 27, item 4)', async () => {
      // The container runs first; the port is allocated after it (as port_allocate may well hand it out: nothing
      // uses it on the host).
      const range = projectPorts(env.config, 'health-agent', [0, 0.8]);
      let port = await freePortInRange(...range);
      while (allocated.has(port)) port = await freePortInRange(...range);
      const name = scope.name('unrelated');
      await scope.createContainer({ name, cmd: scope.httpd(port) });
      await seen(agent, name, port);
      allocated.add(port);
      expect((await call(agent, 'port_allocate', { port, purpose: 'after the container' })).isError).toBe(false);
      const refused = await call<Refusal>(agent, 'tunnel_request_cname', { subdomain: 'notyours', targetPort: port });
      expect(refused.isError).toBe(true);
      // Not TARGET_UNREACHABLE about that container: nothing that could be this port's service answers yet.
      expect(refused.data.code, JSON.stringify(refused.data)).toBe('TARGET_NOT_ANSWERING');
      expect(refused.data.message).toContain(`Nothing answers at http://localhost:${port}`);
      expect(String(refused.data.details.reason)).toContain(`container "${name}" listens on port ${port} only inside its own network namespace and was running before the port was allocated`);
      nothingCreated(env.service, env.config.cloudflared.configPath, 'notyours.153.se');
      const view = await call<{ target: string | null; reason: string }>(agent, 'tunnel_check_connectivity', { targetPort: port });
      expect(view.data.target).toBe(`http://localhost:${port}`);
    }, 60_000);

    it('two services behind one port are refused as ambiguous, naming both', async () => {
      const port = await allocate('two listeners');
      const [a, b] = [scope.name('twin-a'), scope.name('twin-b')];
      await scope.createContainer({ name: a, cmd: scope.httpd(port) });
      await scope.createContainer({ name: b, cmd: scope.httpd(port) });
      await seen(agent, a, port);
      await seen(agent, b, port);
      const refused = await call<Refusal>(agent, 'tunnel_request_cname', { subdomain: 'twins', targetPort: port });
      expect(refused.isError).toBe(true);
      expect(refused.data.code, JSON.stringify(refused.data)).toBe('TARGET_AMBIGUOUS');
      expect(refused.data.message).toContain(`container "${a}"`);
      expect(refused.data.message).toContain(`container "${b}"`);
      nothingCreated(env.service, env.config.cloudflared.configPath, 'twins.153.se');
    }, 60_000);

    it("another project's container is never chosen, even when it is the only one listening", async () => {
      const port = await allocate('foreign container');
      const name = scope.name('foreign');
      await scope.createContainer({ name, cmd: scope.httpd(port), labels: { 'tunnel-manager.project': 'odin' } });
      await seen(agent, name, port);
      const refused = await call<Refusal>(agent, 'tunnel_request_cname', { subdomain: 'foreign', targetPort: port });
      expect(refused.isError).toBe(true);
      expect(refused.data.code).toBe('TARGET_OTHER_PROJECT');
      expect(refused.data.message).toContain('tunnel-manager.project=odin');
      expect(refused.data.fix).toContain('--label tunnel-manager.project=health-agent');
      nothingCreated(env.service, env.config.cloudflared.configPath, 'foreign.153.se');
    }, 60_000);

    it('a port nothing answers on is refused; published ahead, the route waits with a warning and its owner hears when the service answers', async () => {
      const port = await allocate('not yet');
      // Name and target are looked at together; when both refuse (a foreign A record holds www.153.se), the name's
      // refusal is the one answered.
      const both = await call<Refusal>(agent, 'tunnel_request_cname', { subdomain: 'www', targetPort: port });
      expect(both.data.code).toBe('RECORD_EXISTS');
      const refused = await call<Refusal>(agent, 'tunnel_request_cname', { subdomain: 'later', targetPort: port });
      expect(refused.isError).toBe(true);
      expect(refused.data.code).toBe('TARGET_NOT_ANSWERING');
      expect(refused.data.fix).toContain('publishAhead');
      nothingCreated(env.service, env.config.cloudflared.configPath, 'later.153.se');

      const ahead = await call<Published>(agent, 'tunnel_request_cname', { subdomain: 'later', targetPort: port, publishAhead: true });
      expect(ahead.isError, JSON.stringify(ahead.data)).toBe(false);
      expect(ahead.data.target).toBe(`http://localhost:${port}`);
      expect(ahead.data.warning).toMatch(/^published ahead of the service/);
      const listed = await call<{ routes: { hostname: string; awaitingServiceSince: string | null }[] }>(agent, 'tunnel_list_cnames');
      expect(listed.data.routes.find((r) => r.hostname === 'later.153.se')?.awaitingServiceSince).not.toBeNull();

      let cursor = await latestCursor(agent);
      origins.push(await startOrigin(port, 'late-service'));
      const event = await waitUntil(async () => {
        const page = await call<{ events: { kind: string; data: Record<string, unknown> }[]; nextCursor: number }>(agent, 'tunnel_get_events', { cursor, limit: 500 });
        cursor = page.data.nextCursor;
        return page.data.events.find((e) => e.kind === 'route.service_answering' && e.data.hostname === 'later.153.se');
      }, 20_000, 'route.service_answering');
      expect(event.data).toMatchObject({ target: `http://localhost:${port}`, httpStatus: 200 });
      expect(env.service.backend.findRoute('later.153.se')?.awaitingServiceSince).toBeNull();
      expect((await viaEdge(env.service.sandboxInfo!.edgeUrl, 'later.153.se')).body).toContain('hello from late-service');
    }, 60_000);
  });

  describe('2. cloudflared in a container on the service network', () => {
    let service: Service;
    let dataDir: string;
    let agent: Client;
    let network: string;
    let cloudflared: string;

    beforeAll(async () => {
      const image = await ensureStandinImage(docker!, dirname(STANDIN_CLOUDFLARED_BUNDLE));
      let gateway: string;
      ({ name: network, gateway } = await scope.createNetwork('edge'));
      const edgePort = await freePort(gateway);
      const metricsPort = await freePort();
      dataDir = mkdtempSync(join(tmpdir(), 'tm-scenario2-'));
      const config = parseConfig(
        {
          dataDir,
          projects: await reservedProjects(),
          cloudflared: { driver: 'docker', containerName: (cloudflared = scope.name('cloudflared')), metricsAddress: `127.0.0.1:${metricsPort}` },
          docker: { cloudflaredContainer: cloudflared, probeImage: TEST_IMAGE },
          reload: { strategy: 'restart', drainGraceSeconds: 1 },
          health: { probeIntervalSeconds: 1 },
          restart: { startTimeoutSeconds: 30, stopGraceSeconds: 2, backoffSeconds: [1] },
        },
        'test',
      );
      // The stand-in in its container reads the manager's config.yml through a bind mount at the same path, serves its
      // metrics on a port published to the host (where the manager probes it) and registers with the sandbox edge
      // on the network's gateway, the host's address on that network; the edge relays public requests to the
      // container's address on that network.
      await scope.createContainer({
        name: cloudflared,
        image,
        cmd: ['node', '/app/dist/standin-cloudflared.js', 'tunnel', '--config', config.cloudflared.configPath, '--metrics', '0.0.0.0:20241', 'run', config.tunnel.id],
        env: [`TM_STANDIN_EDGE=${gateway}:${edgePort}`, 'TM_STANDIN_ORIGIN_LISTEN=0.0.0.0'],
        networks: [network],
        ports: [{ containerPort: 20241, hostPort: metricsPort }],
        binds: [`${dirname(config.cloudflared.configPath)}:${dirname(config.cloudflared.configPath)}:ro`],
        start: false,
      });
      service = await startService(config, {
        logger: createLogger({ level: process.env.TM_TEST_LOG ?? 'silent' }),
        mcpListen: '127.0.0.1:0',
        edgeListen: `${gateway}:${edgePort}`,
        metricsListen: '127.0.0.1:0',
      });
      await settled(service, 90_000);
      agent = await mcpClient(service.sandboxInfo!.mcpUrl, service.sandboxInfo!.tokens['health-agent']!);
    }, 240_000);
    afterAll(async () => {
      await agent?.close();
      await service?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('a service container on the same network is reached by name, and traffic flows through the edge', async () => {
      const port = (await call<{ port: number }>(agent, 'port_allocate', { port: await freePortInRange(...projectPorts(service.config, 'health-agent', [0.8, 0.9])), purpose: 'named service' })).data.port;
      const name = scope.name('web');
      await scope.createContainer({ name, cmd: scope.httpd(port), networks: [network] });
      await seen(agent, name, port);
      const result = await call<Published>(agent, 'tunnel_request_cname', { subdomain: 's2', targetPort: port });
      expect(result.isError, JSON.stringify(result.data)).toBe(false);
      expect(result.data.target).toBe(`http://${name}:${port}`);
      expect(result.data.reason).toContain(`container "${name}" listens on`);
      expect(result.data.reason).toContain(`both on "${network}"`);
      expect(result.data.warning).toBeNull();
      const response = await waitUntil(async () => {
        const r = await viaEdge(service.sandboxInfo!.edgeUrl, 's2.153.se').catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      }, 30_000, 'the service to answer through the edge and the containerised cloudflared');
      expect(response.body).toContain('tunnel-manager test service');
    }, 120_000);

    it('4. an isolated container is refused with the docker network connect commands, and nothing is created', async () => {
      const port = (await call<{ port: number }>(agent, 'port_allocate', { port: await freePortInRange(...projectPorts(service.config, 'health-agent', [0.9, 1])), purpose: 'isolated service' })).data.port;
      const isolatedNetwork = (await scope.createNetwork('iso')).name;
      const name = scope.name('alone');
      await scope.createContainer({ name, cmd: scope.httpd(port), networks: [isolatedNetwork] });
      await seen(agent, name, port);
      const refused = await call<Refusal>(agent, 'tunnel_request_cname', { subdomain: 's4c', targetPort: port });
      expect(refused.isError).toBe(true);
      expect(refused.data.code).toBe('TARGET_UNREACHABLE');
      expect(refused.data.fix).toContain(`docker network connect ${network} ${name}`);
      expect(refused.data.fix).toContain(`docker network connect ${isolatedNetwork} ${cloudflared}`);
      nothingCreated(service, service.config.cloudflared.configPath, 's4c.153.se');
    }, 60_000);
  });
});

/** The cursor after every event kept so far (tunnel_get_events pages at most 500 at a time). */
async function latestCursor(client: Client): Promise<number> {
  let cursor = 0;
  for (;;) {
    const page = await call<{ events: unknown[]; nextCursor: number }>(client, 'tunnel_get_events', { cursor, limit: 500 });
    if (page.data.events.length === 0) return cursor;
    cursor = page.data.nextCursor;
  }
}
