import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/cli.ts';
import { DockerTestScope, TEST_IMAGE, dockerForTests, ensureTestImage } from '../helpers/docker.ts';
import { call, freePortInRange, mcpClient, projectPorts, startTestService, viaEdge } from '../helpers/service.ts';

/**
 * Routes declared by Docker labels (tunnel-manager.hostname / .port / .project), through the whole service and a
 * real engine: published through the same validation and saga as the tool, refused labels told to their project
 * and to the meta-supervisor with the fix, kept across a redeploy within the grace period, released once the
 * container is gone for longer. The trust model: a label acts only for the project it names, which must be a
 * project supervisor allowed to use labels (`labels.projects`) and hold the port; never for the meta-supervisor.
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
  let odin: Client;
  let ms: Client;

  beforeAll(async () => {
    await ensureTestImage(docker!);
    // odin may not declare routes by label here (labels.projects); the default is every project supervisor.
    env = await startTestService({ docker: { probeImage: TEST_IMAGE }, labels: { enabled: true, releaseGraceSeconds: 4, projects: ['consilio', 'openhorizon'] } });
    consilio = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens.consilio!);
    odin = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens.odin!);
    ms = await mcpClient(env.service.sandboxInfo!.mcpUrl, env.service.sandboxInfo!.tokens['meta-supervisor']!);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([consilio?.close(), odin?.close(), ms?.close()]);
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

  it('a labelled container gets its route for the project it names, is kept across a redeploy, and is released once gone', async () => {
    const port = (await call<{ port: number }>(consilio, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'consilio', [0.5, 1])), purpose: 'labelled web' })).data.port;
    const first = scope.name('lbl-web');
    await scope.createContainer({ name: first, cmd: scope.httpd(80), ports: [{ containerPort: 80, hostPort: port }], labels: labels(host('lbl'), port, 'consilio') });

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
    await scope.createContainer({ name: second, cmd: scope.httpd(80), ports: [{ containerPort: 80, hostPort: port }], labels: labels(host('lbl'), port, 'consilio') });
    await waitUntil(() => env.service.backend.findRoute(host('lbl'))?.labelContainer === second || undefined, 15_000, 'the route to follow the new container');
    const recordId = env.service.backend.findRoute(host('lbl'))?.dnsRecordId;
    expect(recordId).toBe(route.dnsRecordId);

    // Another project's container declaring the same name is no claim on it: it is refused, and does not keep it.
    const squatter = scope.name('lbl-squat');
    await scope.createContainer({ name: squatter, cmd: scope.httpd(80), labels: labels(host('lbl'), port, 'openhorizon') });
    await waitUntil(async () => (await eventsOf(ms)).find((e) => e.kind === 'route.label_refused' && e.data.container === squatter), 30_000, 'the squatter to be refused');
    expect(env.service.backend.findRoute(host('lbl'))).toMatchObject({ project: 'consilio', labelContainer: second });

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

    // The meta-supervisor hears every refusal too.
    expect((await eventsOf(ms)).find((e) => e.kind === 'route.label_refused' && e.project === 'meta-supervisor' && e.data.container === name)?.data).toMatchObject({ code: 'PORT_NOT_OWNED' });
  }, 90_000);

  it('a label never acts for a project that did not name itself, for the meta-supervisor, or for a project not allowed labels', async () => {
    const odinPort = (await call<{ port: number }>(odin, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'odin', [0.5, 1])), purpose: 'odin web' })).data.port;
    const msPort = (await call<{ port: number }>(ms, 'port_allocate', { port: await freePortInRange(...projectPorts(env.config, 'meta-supervisor', [0.5, 1])), purpose: 'ms web' })).data.port;
    const odinRoutesBefore = env.service.backend.listRoutes({ project: 'odin' }).length;
    const msRoutesBefore = env.service.backend.listRoutes({ project: 'meta-supervisor' }).length;
    const cases = [
      // No project label, on a port odin holds: it used to become odin's route, on odin's quota.
      { container: scope.name('lbl-noproj'), hostname: host('lab-noproj'), port: odinPort, project: undefined, code: 'INPUT_INVALID', told: ['meta-supervisor'] },
      // The meta-supervisor named, on its own port: labels never act for it.
      { container: scope.name('lbl-ms'), hostname: host('lab-ms'), port: msPort, project: 'meta-supervisor', code: 'FORBIDDEN', told: ['meta-supervisor'] },
      // odin names itself on its own port, but odin is not in labels.projects.
      { container: scope.name('lbl-odin'), hostname: host('lab-odin'), port: odinPort, project: 'odin', code: 'FORBIDDEN', told: ['odin', 'meta-supervisor'] },
      // consilio names itself on odin's port.
      { container: scope.name('lbl-other'), hostname: host('lab-other'), port: odinPort, project: 'consilio', code: 'PORT_NOT_OWNED', told: ['consilio', 'meta-supervisor'] },
    ];
    for (const entry of cases) await scope.createContainer({ name: entry.container, cmd: scope.httpd(80), labels: labels(entry.hostname, entry.port, entry.project) });
    const refusals = await waitUntil(async () => {
      const all = (await eventsOf(ms)).filter((e) => e.kind === 'route.label_refused' && e.project === 'meta-supervisor');
      const found = cases.map((entry) => all.find((e) => e.data.container === entry.container));
      return found.every((event) => event !== undefined) ? found : undefined;
    }, 45_000, 'every label to be refused');
    refusals.forEach((event, index) => {
      const entry = cases[index]!;
      expect(event.data, entry.container).toMatchObject({ hostname: entry.hostname, code: entry.code });
      expect(String(event.data.fix).length).toBeGreaterThan(20);
    });
    expect(String(refusals[0]!.data.fix)).toContain('tunnel-manager.project');
    expect(String(refusals[1]!.data.message)).toContain('meta-supervisor');
    expect(String(refusals[2]!.data.message)).toContain('labels.projects');
    // Told to the project each label names (when it is one) as well as to the meta-supervisor.
    for (const [project, client] of [['odin', odin], ['consilio', consilio]] as const) {
      const mine = (await eventsOf(client)).filter((e) => e.kind === 'route.label_refused').map((e) => e.data.container);
      for (const entry of cases) expect(mine.includes(entry.container), `${project} told of ${entry.container}`).toBe(entry.told.includes(project));
    }
    // Label routes for other projects: 0.
    for (const entry of cases) expect(env.service.backend.findRoute(entry.hostname)).toBeUndefined();
    expect(env.service.backend.listRoutes({ project: 'odin' })).toHaveLength(odinRoutesBefore);
    expect(env.service.backend.listRoutes({ project: 'meta-supervisor' })).toHaveLength(msRoutesBefore);
    expect(env.service.sandbox!.emulator.state().records.filter((r) => r.name.startsWith('lab-'))).toEqual([]);
  }, 120_000);
});
