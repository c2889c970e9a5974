import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/app/config/config.ts';
import { createLogger } from '../../src/app/config/logger.ts';
import { startTunnelManager as startService, type TunnelManager as Service } from '../../src/root/composition-root.ts';
import { waitUntil } from '../helpers/cli.ts';
import { DockerTestScope, dockerForTests, ensureTestImage } from '../helpers/docker.ts';
import { buildRealCloudflaredImage, realCloudflaredForTests } from '../helpers/real-cloudflared.ts';
import { call, freePortInRange, mcpClient, projectPorts, reservedProjects, settled, viaEdge } from '../helpers/service.ts';
import { freePort } from '../helpers/standin-cloudflared.ts';

/**
 * The docker driver with the real cloudflared 2026.3.0 in a container (an image made here from the static binary) on
 * the service's network: it reads the manager's config.yml through a mount, dials the sandbox edge on the network's
 * gateway with TLS (the sandbox's CA and the tunnel's credentials file mounted from the data directory), and the
 * manager starts, probes and restarts it through the Docker engine. A container on the same network is reached by
 * its name, and traffic flows through the edge.
 */
const docker = await dockerForTests('the real cloudflared under the docker driver');
const binary = docker === null ? null : realCloudflaredForTests('the real cloudflared under the docker driver');

describe.skipIf(docker === null || binary === null)('the real cloudflared in a container under the docker driver', () => {
  const scope = new DockerTestScope(docker!, 'tmrealcf');
  let service: Service;
  let dataDir: string;
  let agent: Client;
  let network: string;

  beforeAll(async () => {
    await ensureTestImage(docker!);
    const image = await buildRealCloudflaredImage(docker!, binary as string);
    let gateway: string;
    ({ name: network, gateway } = await scope.createNetwork('edge'));
    const edgePort = await freePort(gateway);
    const metricsPort = await freePort();
    const projects = await reservedProjects();
    dataDir = mkdtempSync(join(tmpdir(), 'tm-real-docker-'));
    // The edge's tunnel address is chosen once and kept in the data directory: chosen here, so the container's
    // command line can name it before the manager starts.
    const tunnelAddress = `${gateway}:${await freePort(gateway)}`;
    mkdirSync(join(dataDir, 'sandbox'), { recursive: true });
    writeFileSync(join(dataDir, 'sandbox', 'edge-tunnel-address'), `${tunnelAddress}\n`);
    const cloudflared = scope.name('cloudflared');
    const config = parseConfig(
      {
        dataDir,
        projects,
        cloudflared: { driver: 'docker', containerName: cloudflared, metricsAddress: `127.0.0.1:${metricsPort}` },
        docker: { cloudflaredContainer: cloudflared },
        reload: { strategy: 'restart', drainGraceSeconds: 5 },
        health: { probeIntervalSeconds: 1 },
        restart: { startTimeoutSeconds: 30, stopGraceSeconds: 5, backoffSeconds: [1] },
        labels: { enabled: false },
      },
      'test',
    );
    await scope.createContainer({
      name: cloudflared,
      image,
      cmd: [
        'cloudflared', 'tunnel', '--no-autoupdate', '--grace-period', '5s', '--config', config.cloudflared.configPath, '--metrics', '0.0.0.0:20241',
        ...Array.from({ length: 4 }, () => ['--edge', tunnelAddress]).flat(),
        '--cacert', '/sandbox/edge-ca.pem', '--protocol', 'http2', '--credentials-file', '/sandbox/tunnel-credentials.json',
        'run', config.tunnel.id,
      ],
      networks: [network],
      ports: [{ containerPort: 20241, hostPort: metricsPort }],
      binds: [`${dirname(config.cloudflared.configPath)}:${dirname(config.cloudflared.configPath)}:ro`, `${join(dataDir, 'sandbox')}:/sandbox:ro`],
      start: false,
    });
    mkdirSync(dirname(config.cloudflared.configPath), { recursive: true });
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
    await scope.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('registers four connections from the container and serves a named service on its network through the edge', async () => {
    await waitUntil(() => (service.sandbox!.edge.connectors().some((connector) => connector.kind === 'cloudflared' && connector.connections === 4) ? true : undefined), 30_000, 'four connections from the container');
    const port = (await call<{ port: number }>(agent, 'port_allocate', { port: await freePortInRange(...projectPorts(service.config, 'health-agent', [0.5, 1])), purpose: 'named service' })).data.port;
    const name = scope.name('web');
    await scope.createContainer({ name, cmd: scope.httpd(port), networks: [network] });
    await scope.untilAnswering(name, port);
    await waitUntil(async () => {
      const topology = await call<{ containers: { name: string; state: string }[] }>(agent, 'tunnel_get_network_topology');
      return topology.data.containers.some((c) => c.name === name && c.state === 'running') || undefined;
    }, 20_000, `the topology to see ${name}`);
    const result = await call<{ target: string }>(agent, 'tunnel_request_cname', { subdomain: 'real-docker', targetPort: port });
    expect(result.isError, JSON.stringify(result.data)).toBe(false);
    expect(result.data.target).toBe(`http://${name}:${port}`);
    const response = await waitUntil(async () => {
      const answer = await viaEdge(service.sandboxInfo!.edgeUrl, 'real-docker.153.se').catch(() => undefined);
      return answer?.status === 200 ? answer : undefined;
    }, 30_000, 'the service to answer through the edge and the containerised cloudflared');
    expect(response.body).toContain('tunnel-manager test service');
  }, 120_000);
});
