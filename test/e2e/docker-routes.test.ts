import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerTestScope, dockerForTests, ensureTestImage } from '../helpers/docker.ts';
import { waitUntil } from '../helpers/cli.ts';
import { call, freePortInRange, mcpClient, portOf, projectPorts, startOriginInRange, startTestService, viaEdge } from '../helpers/service.ts';
import { TEST_IMAGE } from '../helpers/docker.ts';

/**
 * Routes to containers through the whole service and a real Docker engine: the target is chosen from the live
 * topology, traffic flows through the edge, and a topology change (a renamed container) re-targets the route
 * through the ingress actor.
 */
const docker = await dockerForTests('routes to containers');

describe.skipIf(docker === null)('routes to Docker containers', () => {
  const scope = new DockerTestScope(docker!, 'tmrt');
  beforeAll(async () => {
    await ensureTestImage(docker!);
  }, 120_000);
  afterAll(async () => {
    await scope.cleanup();
  });

  it('a container with a published port is reached at localhost:PORT when cloudflared runs on the host', async () => {
    const env = await startTestService();
    try {
      const info = env.service.sandboxInfo!;
      const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
      const port = (await call<{ port: number }>(consilio, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'consilio', [0.5, 1])), purpose: 'container web' })).data.port;
      await scope.createContainer({ name: scope.name('web'), cmd: scope.httpd(80), ports: [{ containerPort: 80, hostPort: port }] });
      await scope.untilAnswering(scope.name('web'), 80);
      // The topology actor follows the events stream: wait until it knows the container.
      await waitUntil(async () => {
        const topology = await call<{ containers: { name: string }[] }>(consilio, 'tunnel_get_network_topology');
        return topology.data.containers.some((c) => c.name === scope.name('web')) || undefined;
      }, 15_000, 'the topology to see the container');

      const result = await call<{ target: string; reason: string }>(consilio, 'tunnel_request_cname', { subdomain: 'box', targetPort: port });
      expect(result.isError, JSON.stringify(result.data)).toBe(false);
      expect(result.data.target).toBe(`http://localhost:${port}`);
      expect(result.data.reason).toMatch(/publish/i);
      const response = await waitUntil(async () => {
        const r = await viaEdge(info.edgeUrl, 'box.153.se');
        return r.status === 200 ? r : undefined;
      }, 10_000, 'the container to answer through the edge');
      expect(response.body).toContain('tunnel-manager test service');
      await consilio.close();
    } finally {
      await env.stop();
    }
  }, 90_000);

  it('a container whose service listens on 127.0.0.1 inside is refused with the change to make; once made, the route works', async () => {
    const env = await startTestService();
    try {
      const info = env.service.sandboxInfo!;
      const openhorizon = await mcpClient(info.mcpUrl, info.tokens.openhorizon!);
      const port = (await call<{ port: number }>(openhorizon, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'openhorizon', [0.5, 1])), purpose: 'loopback web' })).data.port;
      const name = scope.name('lo');
      const seen = () =>
        waitUntil(async () => {
          const topology = await call<{ containers: { name: string; state: string }[] }>(openhorizon, 'tunnel_get_network_topology');
          return topology.data.containers.some((c) => c.name === name && c.state === 'running') || undefined;
        }, 15_000, 'the topology to see the container');
      const loopback = await scope.createContainer({ name, cmd: scope.httpd(80, '127.0.0.1'), ports: [{ containerPort: 80, hostPort: port }] });
      await scope.untilAnswering(name, 80);
      await seen();

      // Nobody is asked: the manager reads the container's sockets and sees 127.0.0.1:80 only.
      const refused = await call<{ code: string; message: string; fix: string }>(openhorizon, 'tunnel_request_cname', { subdomain: 'lo', targetPort: port });
      expect(refused.isError).toBe(true);
      expect(refused.data.code).toBe('TARGET_UNREACHABLE');
      expect(refused.data.message).toContain('127.0.0.1');
      expect(refused.data.fix).toContain(`0.0.0.0:80`);
      expect(env.service.backend.findRoute('lo.153.se')).toBeUndefined();
      // It is right: through the published port nothing answers.
      expect(await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status, () => 'no answer')).toBe('no answer');

      await loopback.remove({ force: true });
      await scope.createContainer({ name, cmd: scope.httpd(80), ports: [{ containerPort: 80, hostPort: port }] });
      await scope.untilAnswering(name, 80);
      await seen();
      const result = await call<{ target: string }>(openhorizon, 'tunnel_request_cname', { subdomain: 'lo', targetPort: port });
      expect(result.isError, JSON.stringify(result.data)).toBe(false);
      const response = await waitUntil(async () => {
        const r = await viaEdge(info.edgeUrl, 'lo.153.se');
        return r.status === 200 ? r : undefined;
      }, 10_000, 'the container to answer through the edge');
      expect(response.body).toContain('tunnel-manager test service');
      await openhorizon.close();
    } finally {
      await env.stop();
    }
  }, 90_000);

  it('a renamed container is re-targeted through the ingress actor, and its owner is told', async () => {
    const network = (await scope.createNetwork('shared')).name;
    const cloudflared = scope.name('cloudflared');
    await scope.createContainer({ name: cloudflared, cmd: ['sleep', '3600'], networks: [network] });
    const env = await startTestService({ docker: { cloudflaredContainer: cloudflared } });
    try {
      const info = env.service.sandboxInfo!;
      const odin = await mcpClient(info.mcpUrl, info.tokens.odin!);
      const port = (await call<{ port: number }>(odin, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'odin', [0.5, 1])), purpose: 'api' })).data.port;
      const web = await scope.createContainer({ name: scope.name('api'), cmd: scope.httpd(80), networks: [network], ports: [{ containerPort: 80, hostPort: port }] });
      await scope.untilAnswering(scope.name('api'), 80);
      await waitUntil(async () => {
        const topology = await call<{ containers: { name: string }[] }>(odin, 'tunnel_get_network_topology');
        return topology.data.containers.some((c) => c.name === scope.name('api')) || undefined;
      }, 15_000, 'the topology to see the container');

      const result = await call<{ target: string }>(odin, 'tunnel_request_cname', { subdomain: 'api', targetPort: port });
      expect(result.isError, JSON.stringify(result.data)).toBe(false);
      expect(result.data.target).toBe(`http://${scope.name('api')}:80`);

      await web.rename({ name: scope.name('api-v2') });
      const file = await waitUntil(() => {
        const text = readFileSync(env.config.cloudflared.configPath, 'utf8');
        return text.includes(`service: http://${scope.name('api-v2')}:80`) ? text : undefined;
      }, 20_000, 'config.yml to follow the rename');
      expect(file).not.toContain(`service: http://${scope.name('api')}:80\n`);
      const events = await call<{ events: { kind: string; data: Record<string, unknown> }[] }>(odin, 'tunnel_get_events', { cursor: 0 });
      const kinds = events.data.events.map((e) => e.kind);
      expect(kinds).toContain('route.target_drift');
      expect(kinds).toContain('route.retargeted');
      const routes = await call<{ routes: { hostname: string; target: string }[] }>(odin, 'tunnel_list_cnames');
      expect(routes.data.routes.find((r) => r.hostname === 'api.153.se')?.target).toBe(`http://${scope.name('api-v2')}:80`);
      await odin.close();
    } finally {
      await env.stop();
    }
  }, 90_000);

  it("a container that looks like a cloudflared (another tunnel's, another suite's) is not taken for the one the manager starts on the host", async () => {
    // An image named …/cloudflared, running: what any other cloudflared on the same engine looks like.
    const image = `local/cloudflared:${scope.id}`;
    await docker!.getImage(TEST_IMAGE).tag({ repo: 'local/cloudflared', tag: scope.id });
    let other: { remove(options: { force: boolean }): Promise<unknown> } | null = null;
    const env = await startTestService();
    try {
      other = await scope.createContainer({ name: scope.name('other-cloudflared'), image, cmd: ['sleep', '3600'] });
      const info = env.service.sandboxInfo!;
      const consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
      await waitUntil(async () => {
        const topology = await call<{ containers: { name: string }[] }>(consilio, 'tunnel_get_network_topology');
        return topology.data.containers.some((c) => c.name === scope.name('other-cloudflared')) || undefined;
      }, 15_000, 'the topology to see the container');
      const origin = await startOriginInRange(...projectPorts(env.config, 'consilio', [0.5, 1]), 'host-web');
      try {
        const port = portOf(origin);
        expect((await call(consilio, 'port_allocate', { port, purpose: 'host web' })).isError).toBe(false);
        const topology = await call<{ cloudflared: { kind: string; evidence: string } }>(consilio, 'tunnel_get_network_topology');
        expect(topology.data.cloudflared).toMatchObject({ kind: 'host', evidence: expect.stringContaining('cloudflared.driver spawn') });
        const result = await call<{ target: string }>(consilio, 'tunnel_request_cname', { subdomain: 'beside-another', targetPort: port });
        expect(result.isError, JSON.stringify(result.data)).toBe(false);
        expect(result.data.target).toBe(`http://localhost:${port}`);
        expect((await viaEdge(info.edgeUrl, 'beside-another.153.se')).body).toContain('hello from host-web');
      } finally {
        origin.close();
        await consilio.close();
      }
    } finally {
      await env.stop();
      await other?.remove({ force: true });
      await docker!.getImage(image).remove().catch(() => undefined);
    }
  }, 90_000);
});
