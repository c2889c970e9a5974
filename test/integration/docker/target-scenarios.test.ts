import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateCloudflared } from '../../../src/docker/cloudflared-location.ts';
import { detectListenAddress } from '../../../src/docker/listen-address.ts';
import { checkConnectivity } from '../../../src/docker/connectivity-check.ts';
import { locateService, type ServiceRequest } from '../../../src/docker/service-location.ts';
import { selectTarget, type CloudflaredPlacement, type TargetSelection } from '../../../src/docker/target-selection.ts';
import { discoverTopology } from '../../../src/docker/topology-discovery.ts';
import { toErrorShape } from '../../../src/errors.ts';
import { DockerTestScope, TEST_IMAGE, dockerForTests, ensureTestImage } from '../../helpers/docker.ts';

/**
 * The seed's four scenarios (and the hard cases around them) built with real containers and networks;
 * every chosen target is proved with a real HTTP request from cloudflared's side, and every refusal
 * is shown to be right (the request fails) and its recommended command is shown to fix it.
 */

const docker = await dockerForTests('Docker target scenarios');
const run = promisify(execFile);

/**
 * A port free on every address of this host, below Docker's automatic range (32768 and up) so that no container
 * another test publishes with an automatic port can land on it (a port lookup would then be ambiguous).
 */
async function freeFixedPort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '0.0.0.0', () => resolve(true));
    });
    if (free) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return port;
    }
  }
}

describe.skipIf(docker === null)('target selection against a real Docker engine', () => {
  const scope = new DockerTestScope(docker!, 'tmscn');
  const names = {
    cloudflared: scope.name('cloudflared'),
    shared: scope.name('web-shared'),
    published: scope.name('web-published'),
    isolated: scope.name('web-isolated'),
    specific: scope.name('web-specific'),
    loopback: scope.name('web-loopback'),
    stopped: scope.name('web-stopped'),
  };
  let edge = '';
  let app = '';
  /** The host's address on the app network. */
  let appGateway = '';
  let hostServer: http.Server;
  let hostPort = 0;

  const cloudflaredInContainer = async (): Promise<CloudflaredPlacement> =>
    locateCloudflared(await discoverTopology(docker!), { containerName: names.cloudflared }).placement;
  const decide = async (cloudflared: CloudflaredPlacement | 'container', request: ServiceRequest): Promise<TargetSelection> => {
    const topology = await discoverTopology(docker!);
    const placement = cloudflared === 'container' ? locateCloudflared(topology, { containerName: names.cloudflared }).placement : cloudflared;
    return selectTarget({ cloudflared: placement, service: locateService(topology, request).placement });
  };
  const getFromHost = async (url: string): Promise<string> => {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    return response.text();
  };
  const publishedPort = async (container: string): Promise<number> => {
    const info = await docker!.getContainer(container).inspect();
    return Number(info.NetworkSettings.Ports['80/tcp']?.[0]?.HostPort);
  };

  beforeAll(async () => {
    await ensureTestImage(docker!);
    edge = (await scope.createNetwork('edge')).name;
    ({ name: app, gateway: appGateway } = await scope.createNetwork('app'));
    await Promise.all([
      scope.createContainer({ name: names.cloudflared, cmd: ['sleep', '3600'], networks: [edge], extraHosts: ['host.docker.internal:host-gateway'] }),
      scope.createContainer({ name: names.shared, cmd: scope.httpd(), networks: [edge] }),
      scope.createContainer({ name: names.published, cmd: scope.httpd(), networks: [app], ports: [{ containerPort: 80 }] }),
      scope.createContainer({ name: names.isolated, cmd: scope.httpd(), networks: [app] }),
      scope.createContainer({ name: names.loopback, cmd: scope.httpd(80, '127.0.0.1'), networks: [edge] }),
      scope.createContainer({ name: names.stopped, cmd: scope.httpd(), networks: [edge], start: false }),
    ]);
    // Published on the gateway address of the app network: a specific host address, not 0.0.0.0 nor 127.0.0.1.
    // Docker allocates ports per address, so on a fresh engine an automatic port here would equal
    // web-published's: give it a fixed port of its own (sharing one is the TARGET_AMBIGUOUS case below).
    await scope.createContainer({
      name: names.specific, cmd: scope.httpd(), networks: [app],
      ports: [{ containerPort: 80, hostIp: appGateway, hostPort: await freeFixedPort() }],
    });
    hostServer = http.createServer((_req, res) => res.end('host service\n'));
    await new Promise<void>((resolve) => hostServer.listen(0, '127.0.0.1', resolve));
    hostPort = (hostServer.address() as AddressInfo).port;
  });

  afterAll(async () => {
    hostServer?.close();
    await scope.cleanup();
  });

  it('1. host service, cloudflared on the host → http://localhost:PORT, proved from the host', async () => {
    const result = await decide({ kind: 'host' }, { hostPort });
    expect(result).toMatchObject({ ok: true, target: `http://localhost:${hostPort}`, via: 'host-loopback' });
    if (!result.ok) return;
    expect(await getFromHost(result.target)).toBe('host service\n');
    const report = await checkConnectivity(docker, { cloudflared: { kind: 'host' }, target: result.target });
    expect(report).toMatchObject({ ok: true, method: 'host', httpStatus: 200 });
    expect(report.steps.map((s) => [s.step, s.ok])).toEqual([['resolve', true], ['tcp', true], ['http', true]]);
  });

  it('2. container on a shared user-defined network → http://NAME:80, proved from cloudflared\'s network namespace', async () => {
    const result = await decide('container', { container: names.shared, port: 80 });
    expect(result).toMatchObject({ ok: true, target: `http://${names.shared}:80`, via: 'shared-network', network: edge });
    if (!result.ok) return;
    const reply = await scope.wgetFrom(names.cloudflared, result.target);
    expect(reply).toEqual({ ok: true, output: 'tunnel-manager test service' });
    const report = await checkConnectivity(docker, { cloudflared: await cloudflaredInContainer(), target: result.target, helperImage: TEST_IMAGE });
    expect(report).toMatchObject({ ok: true, method: 'helper-container', httpStatus: 200 });
    expect(report.vantage).toContain(names.cloudflared);
    expect(report.steps.map((s) => [s.step, s.ok])).toEqual([['resolve', true], ['tcp', true], ['http', true]]);
  });

  it('3. container with a published port, cloudflared on the host → http://localhost:HOST_PORT, proved from the host', async () => {
    const port = await publishedPort(names.published);
    const result = await decide({ kind: 'host' }, { hostPort: port });
    expect(result).toMatchObject({ ok: true, target: `http://localhost:${port}` });
    if (!result.ok) return;
    expect(await getFromHost(result.target)).toBe('tunnel-manager test service\n');
  });

  it('4. no shared network and no published port → refusal whose first command, run as given, makes the target work', async () => {
    const refused = await decide('container', { container: names.isolated, port: 80 });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.reason).toContain(`"${edge}"`);
    expect(refused.reason).toContain(`"${app}"`);
    expect(refused.recommendations.map((r) => r.command)).toEqual([
      `docker network connect ${edge} ${names.isolated}`,
      `docker network connect ${app} ${names.cloudflared}`,
    ]);
    // It really is unreachable from cloudflared's side…
    expect((await scope.wgetFrom(names.cloudflared, `http://${names.isolated}:80`, 500)).ok).toBe(false);
    // …until the recommended command is run exactly as printed.
    await run('sh', ['-c', refused.recommendations[0]!.command!]);
    const fixed = await decide('container', { container: names.isolated, port: 80 });
    expect(fixed).toMatchObject({ ok: true, target: refused.recommendations[0]!.resultingTarget });
    if (!fixed.ok) return;
    expect((await scope.wgetFrom(names.cloudflared, fixed.target)).ok).toBe(true);
  });

  it('a port published on 127.0.0.1 is refused for a cloudflared container, and indeed unreachable through the host gateway', async () => {
    const port = await publishedPort(names.published);
    const result = await decide('container', { hostPort: port });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/bound to 127\.0\.0\.1/);
    const attempt = await scope.wgetFrom(names.cloudflared, `http://host.docker.internal:${port}`, 500);
    expect(attempt.ok).toBe(false);
  });

  it('a port published on a specific address → that address, proved from the host and from cloudflared\'s container', async () => {
    const port = await publishedPort(names.specific);
    const fromHost = await decide({ kind: 'host' }, { hostPort: port });
    expect(fromHost).toMatchObject({ ok: true, target: `http://${appGateway}:${port}`, via: 'bound-address' });
    if (!fromHost.ok) return;
    expect(await getFromHost(fromHost.target)).toBe('tunnel-manager test service\n');
    const fromContainer = await decide('container', { hostPort: port });
    expect(fromContainer).toMatchObject({ ok: true, target: `http://${appGateway}:${port}` });
    if (!fromContainer.ok) return;
    expect((await scope.wgetFrom(names.cloudflared, fromContainer.target)).ok).toBe(true);
  });

  it('two containers publishing one host port on different addresses → refused as ambiguous, naming both; resolved once one goes', async () => {
    const port = await publishedPort(names.published);
    const twin = scope.name('web-twin');
    await scope.createContainer({ name: twin, cmd: scope.httpd(), networks: [app], ports: [{ containerPort: 80, hostIp: appGateway, hostPort: port }] });
    // Both really answer on that port, each on its own address: the port alone does not say which is meant.
    expect(await getFromHost(`http://127.0.0.1:${port}`)).toBe('tunnel-manager test service\n');
    expect(await getFromHost(`http://${appGateway}:${port}`)).toBe('tunnel-manager test service\n');
    const refusal = await decide({ kind: 'host' }, { hostPort: port }).then(() => null, (error: unknown) => toErrorShape(error));
    expect(refusal).toMatchObject({ code: 'TARGET_AMBIGUOUS', details: { hostPort: port } });
    expect(refusal!.message).toContain(`"${names.published}" (127.0.0.1:${port}->80/tcp)`);
    expect(refusal!.message).toContain(`"${twin}" (${appGateway}:${port}->80/tcp)`);
    expect(refusal!.fix).toContain('docker stop');
    await docker!.getContainer(twin).remove({ force: true });
    expect(await decide({ kind: 'host' }, { hostPort: port })).toMatchObject({ ok: true, target: `http://localhost:${port}` });
  });

  it('a service bound to loopback inside its container is refused, and the name really does not answer', async () => {
    const result = await decide('container', { container: names.loopback, port: 80, listenAddress: '127.0.0.1' });
    expect(result).toMatchObject({ ok: false, code: 'TARGET_UNREACHABLE' });
    const attempt = await scope.wgetFrom(names.cloudflared, `http://${names.loopback}:80`, 500);
    expect(attempt.ok).toBe(false);
    const report = await checkConnectivity(docker, { cloudflared: await cloudflaredInContainer(), target: `http://${names.loopback}:80`, helperImage: TEST_IMAGE });
    expect(report.ok).toBe(false);
    expect(report.steps.find((s) => s.step === 'tcp')).toMatchObject({ ok: false });
  });

  it('reads where a containerised service listens from the kernel: loopback only, every address, or no process', async () => {
    expect(await detectListenAddress(docker!, names.loopback, 80)).toMatchObject({ kind: 'only', address: '127.0.0.1' });
    expect(await detectListenAddress(docker!, names.shared, 80)).toMatchObject({ kind: 'all' });
    expect(await detectListenAddress(docker!, names.shared, 8081)).toMatchObject({ kind: 'not-listening' });
    expect(await detectListenAddress(docker!, names.stopped, 80)).toMatchObject({ kind: 'unknown' });
    // What the loopback verdict leads to: a refusal, as when the caller says so.
    const detected = await detectListenAddress(docker!, names.loopback, 80);
    const refused = await decide('container', { container: names.loopback, port: 80, listenAddress: detected.kind === 'only' ? detected.address : null });
    expect(refused).toMatchObject({ ok: false, code: 'TARGET_UNREACHABLE' });
  });

  it('a stopped container is refused with `docker start`, and starting it makes the promised target work', async () => {
    const refused = await decide('container', { container: names.stopped, port: 80 });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.recommendations[0]).toMatchObject({ command: `docker start ${names.stopped}`, resultingTarget: `http://${names.stopped}:80` });
    await run('sh', ['-c', refused.recommendations[0]!.command!]);
    expect((await scope.wgetFrom(names.cloudflared, `http://${names.stopped}:80`)).ok).toBe(true);
  });

  it('the connectivity check reports a name that does not resolve from cloudflared\'s side', async () => {
    const report = await checkConnectivity(docker, { cloudflared: await cloudflaredInContainer(), target: `http://${scope.name('nothing')}:80`, helperImage: TEST_IMAGE });
    expect(report.ok).toBe(false);
    expect(report.steps).toEqual([expect.objectContaining({ step: 'resolve', ok: false })]);
    expect(report.error).toMatch(/does not resolve/);
  });
});
