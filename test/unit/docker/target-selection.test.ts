import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { locateCloudflared } from '../../../src/docker/cloudflared-location.ts';
import { locateService, type ServiceRequest } from '../../../src/docker/service-location.ts';
import { toErrorShape } from '../../../src/errors.ts';
import {
  selectTarget,
  targetUnreachableError,
  type CloudflaredPlacement,
  type ServicePlacement,
  type TargetSelection,
  type TargetSelectionInput,
} from '../../../src/docker/target-selection.ts';
import type { DockerContainer, PortBinding, Topology } from '../../../src/docker/topology-model.ts';

const host: CloudflaredPlacement = { kind: 'host' };
const cf = (networks: string[], extra: Partial<Extract<CloudflaredPlacement, { kind: 'container' }>> = {}): CloudflaredPlacement => ({
  kind: 'container', name: 'cloudflared', networkMode: networks[0] ?? 'bridge', networks, hostGatewayNames: [], ...extra,
});
const hostService = (port: number, listenAddress?: string): ServicePlacement => ({ kind: 'host', port, ...(listenAddress ? { listenAddress } : {}) });
const bind = (containerPort: number, hostPort: number | null, hostIp: string | null = '127.0.0.1'): PortBinding => ({ containerPort, protocol: 'tcp', hostIp, hostPort });
const web = (networks: string[], ports: PortBinding[] = [], extra: Partial<Extract<ServicePlacement, { kind: 'container' }>> = {}): ServicePlacement => ({
  kind: 'container', name: 'web', state: 'running', networkMode: networks[0] ?? 'bridge', networks, ports, port: 80, ...extra,
});

interface Case {
  name: string;
  input: TargetSelectionInput;
  target?: string;
  via?: string;
  network?: string;
  alternatives?: string[];
  refused?: { reason: RegExp; commands: (string | null)[] };
}

const cases: Case[] = [
  // The seed's four scenarios.
  { name: '1. host service, cloudflared on the host', input: { cloudflared: host, service: hostService(3100) }, target: 'http://localhost:3100', via: 'host-loopback' },
  { name: '2. container on a shared user-defined network', input: { cloudflared: cf(['edge']), service: web(['edge']) }, target: 'http://web:80', via: 'shared-network', network: 'edge' },
  { name: '3. container with a published port, cloudflared on the host', input: { cloudflared: host, service: web(['bridge'], [bind(80, 3100)]) }, target: 'http://localhost:3100', via: 'host-loopback' },
  {
    name: '4. no shared network, no published port → refuse with network connect commands',
    input: { cloudflared: cf(['edge']), service: web(['app']) },
    refused: { reason: /share no user-defined network.*publishes no host port.*"edge".*"app"/, commands: ['docker network connect edge web', 'docker network connect app cloudflared'] },
  },
  // Default bridge only.
  {
    name: 'only the default bridge network shared → not chosen by name',
    input: { cloudflared: cf(['bridge']), service: web(['bridge']) },
    refused: { reason: /only the default "bridge" network, which has no name resolution/, commands: ['docker network create tunnel-manager && docker network connect tunnel-manager cloudflared && docker network connect tunnel-manager web'] },
  },
  {
    name: 'bridge shared plus a published port on all interfaces with host-gateway → host.docker.internal',
    input: { cloudflared: cf(['bridge'], { hostGatewayNames: ['host.docker.internal'] }), service: web(['bridge'], [bind(80, 3101, '0.0.0.0')]) },
    target: 'http://host.docker.internal:3101', via: 'host-gateway',
  },
  // Several shared networks.
  {
    name: 'several shared networks, no preference → first by name',
    input: { cloudflared: cf(['zeta', 'alpha', 'mid']), service: web(['mid', 'zeta', 'alpha']) },
    target: 'http://web:80', network: 'alpha',
  },
  {
    name: 'several shared networks, explicit preference wins',
    input: { cloudflared: cf(['zeta', 'alpha']), service: web(['alpha', 'zeta']), preferredNetwork: 'zeta' },
    target: 'http://web:80', network: 'zeta',
  },
  {
    name: 'preferred network not shared → falls back to the sorted rule',
    input: { cloudflared: cf(['zeta', 'alpha']), service: web(['alpha', 'zeta']), preferredNetwork: 'other' },
    target: 'http://web:80', network: 'alpha',
  },
  // network_mode host on either side.
  { name: 'cloudflared container with network_mode host, host service', input: { cloudflared: cf([], { networkMode: 'host' }), service: hostService(3102) }, target: 'http://localhost:3102', via: 'host-loopback' },
  { name: 'cloudflared container with network_mode host, published port', input: { cloudflared: cf([], { networkMode: 'host' }), service: web(['app'], [bind(80, 3103)]) }, target: 'http://localhost:3103' },
  { name: 'service container with network_mode host, cloudflared on the host', input: { cloudflared: host, service: web([], [], { networkMode: 'host', port: 3104 }) }, target: 'http://localhost:3104', via: 'host-loopback' },
  {
    name: 'service container with network_mode host, cloudflared in a bridge container with host-gateway',
    input: { cloudflared: cf(['edge'], { hostGatewayNames: ['host.docker.internal'] }), service: web([], [], { networkMode: 'host', port: 3105 }) },
    target: 'http://host.docker.internal:3105', via: 'host-gateway',
  },
  // Published on a specific IP.
  { name: 'published on a specific IP, cloudflared on the host → that IP', input: { cloudflared: host, service: web(['app'], [bind(80, 3106, '10.231.9.1')]) }, target: 'http://10.231.9.1:3106', via: 'bound-address' },
  { name: 'published on 0.0.0.0, cloudflared on the host → localhost', input: { cloudflared: host, service: web(['app'], [bind(80, 3107, '0.0.0.0')]) }, target: 'http://localhost:3107' },
  { name: 'published on a specific IP, cloudflared in a container → that IP', input: { cloudflared: cf(['edge']), service: web(['app'], [bind(80, 3108, '10.231.9.1')]) }, target: 'http://10.231.9.1:3108', via: 'bound-address' },
  { name: 'published on an IPv6 address → bracketed', input: { cloudflared: host, service: web(['app'], [bind(80, 3109, 'fd00::5')]) }, target: 'http://[fd00::5]:3109' },
  // Loopback inside the container.
  {
    name: 'service bound to 127.0.0.1 inside its container → refuse even with a shared network and a published port',
    input: { cloudflared: cf(['edge']), service: web(['edge'], [bind(80, 3110)], { listenAddress: '127.0.0.1' }) },
    refused: { reason: /listens on 127\.0\.0\.1 inside its container/, commands: [null] },
  },
  {
    name: 'service bound to loopback but sharing cloudflared\'s network namespace → localhost',
    input: { cloudflared: cf(['edge'], { netnsOwner: 'web' }), service: web(['edge'], [], { listenAddress: '127.0.0.1' }) },
    target: 'http://localhost:80', via: 'same-network-namespace',
  },
  // Stopped and paused.
  {
    name: 'stopped container → refuse with docker start and the target it would get',
    input: { cloudflared: cf(['edge']), service: web(['edge'], [], { state: 'exited' }) },
    refused: { reason: /"web" is exited/, commands: ['docker start web'] },
  },
  {
    name: 'paused container → docker unpause',
    input: { cloudflared: host, service: web(['app'], [bind(80, 3111)], { state: 'paused' }) },
    refused: { reason: /is paused/, commands: ['docker unpause web'] },
  },
  // Renamed.
  {
    name: 'renamed container → current name, and the reason says so',
    input: { cloudflared: cf(['edge']), service: web(['edge'], [], { name: 'web-v2', requestedAs: 'web' }) },
    target: 'http://web-v2:80',
  },
  // Host gateway.
  { name: 'host service, cloudflared container with host-gateway', input: { cloudflared: cf(['edge'], { hostGatewayNames: ['host.docker.internal'] }), service: hostService(3112) }, target: 'http://host.docker.internal:3112', via: 'host-gateway' },
  { name: 'host service, custom host-gateway name', input: { cloudflared: cf(['edge'], { hostGatewayNames: ['dockerhost'] }), service: hostService(3113) }, target: 'http://dockerhost:3113' },
  {
    name: 'host service, cloudflared container without host-gateway → refuse with --add-host',
    input: { cloudflared: cf(['edge']), service: hostService(3114) },
    refused: { reason: /no host-gateway mapping/, commands: ['--add-host host.docker.internal:host-gateway', '--network host'] },
  },
  {
    name: 'host service listening on 127.0.0.1, cloudflared in a bridge container → refuse',
    input: { cloudflared: cf(['edge'], { hostGatewayNames: ['host.docker.internal'] }), service: hostService(3115, '127.0.0.1') },
    refused: { reason: /listens on 127\.0\.0\.1 only/, commands: ['--network host', null] },
  },
  { name: 'host service listening on a specific address, cloudflared on the host', input: { cloudflared: host, service: hostService(3116, '10.0.0.5') }, target: 'http://10.0.0.5:3116', via: 'bound-address' },
  {
    name: 'published on 127.0.0.1 only, cloudflared in a container → refuse (a container cannot reach host loopback)',
    input: { cloudflared: cf(['edge'], { hostGatewayNames: ['host.docker.internal'] }), service: web(['app'], [bind(80, 3117)]) },
    refused: { reason: /bound to 127\.0\.0\.1, which a container cannot reach/, commands: ['docker network connect edge web', 'docker network connect app cloudflared'] },
  },
  {
    name: 'published on all interfaces, cloudflared container without host-gateway → refuse with network connect and --add-host',
    input: { cloudflared: cf(['edge']), service: web(['app'], [bind(80, 3118, '0.0.0.0')]) },
    refused: { reason: /needs a host-gateway mapping/, commands: ['docker network connect edge web', 'docker network connect app cloudflared', '--add-host host.docker.internal:host-gateway'] },
  },
  {
    name: 'cloudflared on the host, container without a published port → refuse with -p',
    input: { cloudflared: host, service: web(['app'], [], { hostPortHint: 3119 }) },
    refused: { reason: /publishes no host port for 80\/tcp/, commands: ['-p 127.0.0.1:3119:80'] },
  },
  {
    name: 'shared network and published port: name first, published port as alternative',
    input: { cloudflared: cf(['edge'], { hostGatewayNames: ['host.docker.internal'] }), service: web(['edge'], [bind(80, 3120, '0.0.0.0')]) },
    target: 'http://web:80', alternatives: ['http://host.docker.internal:3120'],
  },
  {
    name: 'service with network_mode none → refuse',
    input: { cloudflared: cf(['edge']), service: web([], [], { networkMode: 'none' }) },
    refused: { reason: /network_mode "none"/, commands: ['--network edge'] },
  },
  { name: 'https scheme is kept', input: { cloudflared: host, service: hostService(3121), scheme: 'https' }, target: 'https://localhost:3121' },
  { name: 'published port of another container port is ignored', input: { cloudflared: host, service: web(['app'], [bind(81, 3122)], { hostPortHint: 3122 }) }, refused: { reason: /publishes no host port for 80/, commands: ['-p 127.0.0.1:3122:80'] } },
];

describe('selectTarget: a table of topologies', () => {
  it('has at least 20 cases', () => expect(cases.length).toBeGreaterThanOrEqual(20));

  it.each(cases)('$name', (c) => {
    const result = selectTarget(c.input);
    if (c.refused) {
      expect(result.ok, JSON.stringify(result)).toBe(false);
      if (result.ok) return;
      expect(result.code).toBe('TARGET_UNREACHABLE');
      expect(result.reason).toMatch(c.refused.reason);
      expect(result.recommendations.map((r) => r.command)).toEqual(c.refused.commands);
      for (const r of result.recommendations) expect(r.explanation.length).toBeGreaterThan(20);
      return;
    }
    expect(result.ok, JSON.stringify(result)).toBe(true);
    if (!result.ok) return;
    expect(result.target).toBe(c.target);
    expect(result.reason.length).toBeGreaterThan(20);
    if (c.via) expect(result.via).toBe(c.via);
    if (c.network) expect(result.network).toBe(c.network);
    if (c.alternatives) expect(result.alternatives.map((a) => a.target)).toEqual(c.alternatives);
  });

  it('says which networks each side is on when refusing', () => {
    const result = selectTarget({ cloudflared: cf(['edge', 'bridge']), service: web(['app', 'bridge']) });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.details.cloudflaredNetworks).toEqual(['bridge', 'edge']);
    expect(result.details.serviceNetworks).toEqual(['app', 'bridge']);
    expect(result.recommendations[0]?.resultingTarget).toBe('http://web:80');
  });

  it('tells the target a stopped container would get once started', () => {
    const result = selectTarget({ cloudflared: cf(['edge']), service: web(['edge'], [], { state: 'exited' }) });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.recommendations[0]).toMatchObject({ command: 'docker start web', resultingTarget: 'http://web:80' });
  });

  it('mentions the rename in the reason', () => {
    const result = selectTarget({ cloudflared: cf(['edge']), service: web(['edge'], [], { name: 'web-v2', requestedAs: 'web' }) });
    expect(result.ok && result.reason).toMatch(/"web" is now named "web-v2"/);
  });

  it('turns a refusal into the one error shape with the commands in the fix', () => {
    const result = selectTarget({ cloudflared: cf(['edge']), service: web(['app']) });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const error = targetUnreachableError(result).toJSON();
    expect(error.code).toBe('TARGET_UNREACHABLE');
    expect(error.fix).toContain('docker network connect edge web');
    expect(error.details).toMatchObject({ cloudflaredNetworks: ['edge'], serviceNetworks: ['app'] });
  });
});

// ---------------------------------------------------------------------------------------------
// Order independence, over whole topologies: locate cloudflared, locate the service, select.

const NETWORK_NAMES = ['bridge', 'alpha', 'beta', 'gamma', 'delta'];

const containerArb = (name: string): fc.Arbitrary<DockerContainer> =>
  fc.record({
    networks: fc.subarray(NETWORK_NAMES, { minLength: 0, maxLength: 4 }),
    state: fc.constantFrom('running', 'running', 'running', 'exited'),
    ports: fc.array(
      fc.record({
        containerPort: fc.constantFrom(80, 8080),
        hostPort: fc.option(fc.constantFrom(3100, 3101, 3102), { nil: null }),
        hostIp: fc.constantFrom('127.0.0.1', '0.0.0.0', '::', '10.231.9.1'),
      }),
      { maxLength: 3 },
    ),
    extraHosts: fc.subarray(['host.docker.internal:host-gateway', 'dockerhost:host-gateway']),
    hostMode: fc.boolean(),
  }).map((r) => ({
    id: `${name}-id`,
    name,
    image: name.startsWith('cloudflared') ? 'cloudflare/cloudflared:2024.1.0' : 'local/app:1',
    state: r.state,
    networkMode: r.hostMode && name !== 'web' ? 'host' : (r.networks[0] ?? 'bridge'),
    labels: {},
    extraHosts: r.extraHosts,
    networks: r.hostMode && name !== 'web' ? [] : r.networks.map((n) => ({ networkId: `${n}-id`, networkName: n, aliases: [], ipAddress: null })),
    ports: r.ports.map((p) => ({ containerPort: p.containerPort, protocol: 'tcp' as const, hostIp: p.hostIp, hostPort: p.hostPort })),
    command: null,
  }));

const topologyArb: fc.Arbitrary<Topology> = fc
  .tuple(containerArb('web'), containerArb('api'), fc.option(containerArb('cloudflared-a'), { nil: null }), fc.option(containerArb('cloudflared-b'), { nil: null }))
  .map(([a, b, c, d]) => ({
    networks: NETWORK_NAMES.map((n) => ({ id: `${n}-id`, name: n, driver: 'bridge', subnet: null, internal: false, labels: {} })),
    containers: [a, b, ...(c ? [c] : []), ...(d ? [d] : [])],
  }));

const requestArb: fc.Arbitrary<ServiceRequest> = fc.oneof(
  fc.record({ hostPort: fc.constantFrom(3100, 3101, 3102, 3200) }),
  fc.record({ container: fc.constantFrom('web', 'api'), port: fc.constantFrom(80, 8080) }),
);

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i -= 1) {
    state = (state * 1103515245 + 12345) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function reorder(topology: Topology, seed: number): Topology {
  return {
    networks: shuffled(topology.networks, seed),
    containers: shuffled(topology.containers, seed + 1).map((c, i) => ({
      ...c,
      networks: shuffled(c.networks, seed + 2 + i),
      ports: shuffled(c.ports, seed + 3 + i),
      extraHosts: shuffled(c.extraHosts, seed + 4 + i),
    })),
  };
}

function decide(topology: Topology, request: ServiceRequest, preferredNetwork: string | null): TargetSelection {
  const cloudflared = locateCloudflared(topology);
  const service = locateService(topology, request);
  return selectTarget({ cloudflared: cloudflared.placement, service: service.placement, preferredNetwork });
}

describe('selectTarget: order independence (property)', () => {
  it('never depends on the order networks, containers, ports or extra hosts are listed in', () => {
    fc.assert(
      fc.property(topologyArb, requestArb, fc.option(fc.constantFrom(...NETWORK_NAMES), { nil: null }), fc.integer({ min: 1, max: 2 ** 30 }), (topology, request, preferred, seed) => {
        // An ambiguous host port is refused: the refusal must not depend on the order either.
        const outcome = (t: Topology) => {
          try {
            return decide(t, request, preferred);
          } catch (error) {
            return toErrorShape(error);
          }
        };
        expect(outcome(reorder(topology, seed))).toEqual(outcome(topology));
      }),
      { numRuns: 400 },
    );
  });

  it('placement inputs listed in any order give the same answer', () => {
    fc.assert(
      fc.property(
        fc.subarray(NETWORK_NAMES), fc.subarray(NETWORK_NAMES), fc.subarray(['host.docker.internal', 'dockerhost']),
        fc.array(fc.record({ hostPort: fc.constantFrom(3100, 3101), hostIp: fc.constantFrom('127.0.0.1', '0.0.0.0', '::', '10.0.0.7') }), { maxLength: 4 }),
        fc.integer({ min: 1, max: 2 ** 30 }),
        (cfNets, svcNets, gateways, ports, seed) => {
          const bindings = ports.map((p) => bind(80, p.hostPort, p.hostIp));
          const a = selectTarget({ cloudflared: cf(cfNets, { networkMode: 'x', hostGatewayNames: gateways }), service: web(svcNets, bindings, { networkMode: 'x' }) });
          const b = selectTarget({
            cloudflared: cf(shuffled(cfNets, seed), { networkMode: 'x', hostGatewayNames: shuffled(gateways, seed + 1) }),
            service: web(shuffled(svcNets, seed + 2), shuffled(bindings, seed + 3), { networkMode: 'x' }),
          });
          expect(b).toEqual(a);
        },
      ),
      { numRuns: 400 },
    );
  });
});
