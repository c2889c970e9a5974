import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/cli.ts';
import { DockerTestScope, TEST_IMAGE, dockerForTests, ensureTestImage } from '../helpers/docker.ts';
import { call, freePortInRange, mcpClient, projectPorts, startTestService, viaEdge } from '../helpers/service.ts';

/**
 * Routes declared by Docker labels (tunnel-manager.hostname / .port / .project), through the whole service and a
 * real engine: published through the same validation and saga as the tool, refused labels told to their project
 * with the fix, kept across a redeploy within the grace period, released once the container is gone for longer.
 */
const docker = await dockerForTests('routes from Docker labels');

interface EventData { kind: string; project: string; data: Record<string, unknown> }

describe.skipIf(docker === null)('routes declared by Docker labels', () => {
  const scope = new DockerTestScope(docker!, 'tmlbl');
  // Names of this run's own: every service with labels on sees every labelled container of the engine, so another
  // copy of this suite running beside this one must not declare the same hostnames.
  const host = (name: string): string => `${name}-${scope.id}.153.se`;
  let env: Awaited<ReturnType<typeof startTestService>>;
  let consilio: Client;
  let ms: Client;

  beforeAll(async () => {
    await ensureTestImage(docker!);
    env = await startTestService({ docker: { probeImage: TEST_IMAGE }, labels: { enabled: true, releaseGraceSeconds: 4 } });
    consilio = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens.consilio!);
    ms = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens['meta-supervisor']!);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([consilio?.close(), ms?.close()]);
    await env?.stop();
    await scope.cleanup();
  });

  async function eventsOf(client: Client): Promise<EventData[]> {
    const all: EventData[] = [];
    let cursor = 0;
    for (;;) {
      const page = await call<{ events: EventData[]; nextCursor: number }>(client, 'tunnel_get_events', { cursor, limit: 500 });
      if (page.data.events.length === 0) return all;
      all.push(...page.data.events);
      cursor = page.data.nextCursor;
    }
  }
  const labels = (hostname: string, port: number, project?: string) => ({
    'tunnel-manager.hostname': hostname,
    'tunnel-manager.port': String(port),
    ...(project ? { 'tunnel-manager.project': project } : {}),
  });

  it('a labelled container gets its route for the project owning the port, is kept across a redeploy, and is released once gone', async () => {
    const port = (await call<{ port: number }>(consilio, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'consilio', [0.5, 1])), purpose: 'labelled web' })).data.port;
    const first = scope.name('lbl-web');
    await scope.createContainer({ name: first, cmd: scope.httpd(80), ports: [{ containerPort: 80, hostPort: port }], labels: labels(host('lbl'), port) });

    const route = await waitUntil(() => {
      const found = env.service.backend.findRoute(host('lbl'));
      return found?.status === 'active' ? found : undefined;
    }, 30_000, 'the label route to be active');
    expect(route).toMatchObject({ project: 'consilio', targetPort: port, service: `http://localhost:${port}`, labelContainer: first });
    const served = await waitUntil(async () => {
      const r = await viaEdge(env.service.sandboxInfo!.edgeUrl, host('lbl'));
      return r.status === 200 ? r : undefined;
    }, 10_000, 'the labelled container to answer through the edge');
    expect(served.body).toContain('tunnel-manager test service');
    expect((await eventsOf(consilio)).find((e) => e.kind === 'route.label_published')?.data).toMatchObject({ container: first, hostname: host('lbl') });

    // A redeploy: the old container goes, a new one with the same labels comes within the grace period.
    await docker!.getContainer(first).remove({ force: true });
    const second = scope.name('lbl-web-v2');
    await scope.createContainer({ name: second, cmd: scope.httpd(80), ports: [{ containerPort: 80, hostPort: port }], labels: labels(host('lbl'), port) });
    await waitUntil(() => env.service.backend.findRoute(host('lbl'))?.labelContainer === second || undefined, 15_000, 'the route to follow the new container');
    const recordId = env.service.backend.findRoute(host('lbl'))?.dnsRecordId;
    expect(recordId).toBe(route.dnsRecordId);

    // Gone for good: after the grace period the route, its rule and its record go.
    await docker!.getContainer(second).remove({ force: true });
    await waitUntil(() => env.service.backend.findRoute(host('lbl')) === undefined || undefined, 30_000, 'the route to be released');
    expect(env.service.sandbox!.emulator.state().records.filter((r) => r.name === host('lbl'))).toEqual([]);
    expect((await eventsOf(consilio)).find((e) => e.kind === 'route.label_released')?.data).toMatchObject({ hostname: host('lbl'), container: second });
  }, 120_000);

  it('a label that cannot be honoured is told to its project with the fix, and nothing is created', async () => {
    // consilio names itself, but the port is not consilio's.
    const name = scope.name('lbl-bad');
    await scope.createContainer({ name, cmd: scope.httpd(80), labels: labels(host('nope'), projectPorts(env.config, 'odin')[1], 'consilio') });
    const refused = await waitUntil(async () => (await eventsOf(consilio)).find((e) => e.kind === 'route.label_refused' && e.data.container === name), 30_000, 'route.label_refused');
    expect(refused.data).toMatchObject({ hostname: host('nope'), port: projectPorts(env.config, 'odin')[1], code: 'PORT_NOT_OWNED' });
    expect(String(refused.data.fix)).toContain('port_allocate');
    expect(env.service.backend.findRoute(host('nope'))).toBeUndefined();

    // No project label and a port nobody holds: the meta-supervisor hears it.
    const orphan = scope.name('lbl-orphan');
    await scope.createContainer({ name: orphan, cmd: scope.httpd(80), labels: labels(host('orphan'), projectPorts(env.config, 'meta-supervisor')[1]) });
    const told = await waitUntil(async () => (await eventsOf(ms)).find((e) => e.kind === 'route.label_refused' && e.data.container === orphan), 30_000, 'route.label_refused for the operator');
    expect(told).toMatchObject({ project: 'meta-supervisor', data: { code: 'PORT_NOT_OWNED' } });
    expect(env.service.backend.findRoute(host('orphan'))).toBeUndefined();
  }, 90_000);
});
