import { describe, expect, it } from 'vitest';
import { PROJECT_LABEL, locateService, needsListenEvidence } from '../../../src/docker/service-location.ts';
import type { PortEvidence } from '../../../src/docker/port-evidence.ts';
import { toErrorShape } from '../../../src/errors.ts';
import { container, topology } from './topology-fixtures.ts';

/**
 * The service behind a host port, decided from evidence (publishes → listens → exposes → nothing), with ambiguity
 * refused and another project's container never chosen.
 */
const PORT = 3400;
const evidence = (host: string[] | null, containers: PortEvidence['containers']): PortEvidence => ({ host, containers });
const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return toErrorShape(error);
  }
  throw new Error('expected a refusal');
};

describe('locateService by host port, from evidence', () => {
  const web = container('web', ['app']);
  const api = container('api', ['app']);

  it('a container that publishes the port wins over every other evidence', () => {
    const publisher = container('pub', ['app'], { ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: PORT }] });
    const found = locateService(topology([publisher, web]), { hostPort: PORT, evidence: evidence(['127.0.0.1'], [{ name: 'web', addresses: ['0.0.0.0'] }]) });
    expect(found.placement).toMatchObject({ kind: 'container', name: 'pub', port: 80 });
    expect(found.evidence).toBe(`container "pub" publishes host port ${PORT} → 80/tcp`);
  });

  it('the listeners are read only when no running container publishes the port (the publisher decides first)', () => {
    const publisher = container('pub', ['app'], { ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: PORT }] });
    const stopped = container('old', ['app'], { state: 'exited', ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: PORT }] });
    expect(needsListenEvidence(topology([publisher, web]), PORT)).toBe(false);
    expect(needsListenEvidence(topology([publisher, web]), PORT + 1)).toBe(true);
    expect(needsListenEvidence(topology([stopped, web]), PORT)).toBe(true);
    // Without evidence the publisher is still chosen, exactly as with it.
    expect(locateService(topology([publisher, web]), { hostPort: PORT }).placement).toMatchObject({ kind: 'container', name: 'pub', port: 80 });
  });

  it('a container whose network namespace listens on the port is the service, at that port inside it', () => {
    const found = locateService(topology([web, api]), { hostPort: PORT, evidence: evidence([], [{ name: 'web', addresses: ['0.0.0.0'] }]) });
    expect(found.placement).toMatchObject({ kind: 'container', name: 'web', port: PORT, listenAddress: '0.0.0.0', hostPortHint: PORT });
    expect(found.listening).toBe(true);
    expect(found.evidence).toContain(`container "web" listens on 0.0.0.0 port ${PORT} in its own network namespace`);
  });

  it('a host process listening on the port is the service, with the address it listens on', () => {
    const found = locateService(topology([web]), { hostPort: PORT, evidence: evidence(['127.0.0.1'], []) });
    expect(found.placement).toEqual({ kind: 'host', port: PORT, listenAddress: '127.0.0.1' });
    expect(found.listening).toBe(true);
    expect(found.evidence).toContain('a host process listens on 127.0.0.1');
  });

  it('a host process and a container both listening is ambiguous, and both are named', () => {
    const shape = refusal(() => locateService(topology([web]), { hostPort: PORT, evidence: evidence(['0.0.0.0'], [{ name: 'web', addresses: ['0.0.0.0'] }]) }));
    expect(shape.code).toBe('TARGET_AMBIGUOUS');
    expect(shape.message).toContain('a host process (0.0.0.0)');
    expect(shape.message).toContain('container "web" (0.0.0.0)');
  });

  it('two listening containers are ambiguous', () => {
    const shape = refusal(() => locateService(topology([web, api]), { hostPort: PORT, evidence: evidence([], [{ name: 'api', addresses: ['0.0.0.0'] }, { name: 'web', addresses: ['::'] }]) }));
    expect(shape).toMatchObject({ code: 'TARGET_AMBIGUOUS', details: { hostPort: PORT, candidates: ['container "api" (0.0.0.0)', 'container "web" (::)'] } });
  });

  it('with nothing listening, a running container that declares EXPOSE for the port is the service, not answering yet', () => {
    const exposing = container('later', ['app'], { ports: [{ containerPort: PORT, protocol: 'tcp', hostIp: null, hostPort: null }] });
    const found = locateService(topology([web, exposing]), { hostPort: PORT, evidence: evidence([], []) });
    expect(found.placement).toMatchObject({ kind: 'container', name: 'later', port: PORT });
    expect(found.listening).toBe(false);
    expect(found.evidence).toContain(`declares EXPOSE ${PORT}`);
  });

  it('with no evidence of anything, the port is a host process that does not listen yet', () => {
    const found = locateService(topology([web]), { hostPort: PORT, evidence: evidence([], []) });
    expect(found.placement).toEqual({ kind: 'host', port: PORT, listenAddress: null });
    expect(found.listening).toBe(false);
  });

  it('without readable evidence it falls back to a host process, and says it does not know', () => {
    const found = locateService(topology([web]), { hostPort: PORT, evidence: evidence(null, null) });
    expect(found.placement.kind).toBe('host');
    expect(found.listening).toBeNull();
  });

  describe('the project label', () => {
    const odins = container('odin-web', ['app'], { labels: { [PROJECT_LABEL]: 'odin' } });

    it("another project's container is refused by name when it is the only candidate", () => {
      const shape = refusal(() => locateService(topology([odins]), { hostPort: PORT, project: 'consilio', evidence: evidence([], [{ name: 'odin-web', addresses: ['0.0.0.0'] }]) }));
      expect(shape).toMatchObject({ code: 'TARGET_OTHER_PROJECT', details: { container: 'odin-web', labelledProject: 'odin', project: 'consilio' } });
      expect(shape.fix).toContain(`--label ${PROJECT_LABEL}=consilio`);
    });

    it("another project's container is left out, so the project's own candidate is not ambiguous", () => {
      const found = locateService(topology([odins, web]), { hostPort: PORT, project: 'consilio', evidence: evidence([], [{ name: 'odin-web', addresses: ['0.0.0.0'] }, { name: 'web', addresses: ['0.0.0.0'] }]) });
      expect(found.placement).toMatchObject({ kind: 'container', name: 'web' });
    });

    it("another project's container beside a host listener: the host process is the service", () => {
      const found = locateService(topology([odins]), { hostPort: PORT, project: 'consilio', evidence: evidence(['0.0.0.0'], [{ name: 'odin-web', addresses: ['0.0.0.0'] }]) });
      expect(found.placement.kind).toBe('host');
    });

    it("a container labelled for the asking project, or for nobody, is a candidate; the meta-supervisor's view has no filter", () => {
      const own = container('mine', ['app'], { labels: { [PROJECT_LABEL]: 'consilio' } });
      expect(locateService(topology([own]), { hostPort: PORT, project: 'consilio', evidence: evidence([], [{ name: 'mine', addresses: ['0.0.0.0'] }]) }).placement).toMatchObject({ name: 'mine' });
      expect(locateService(topology([odins]), { hostPort: PORT, project: null, evidence: evidence([], [{ name: 'odin-web', addresses: ['0.0.0.0'] }]) }).placement).toMatchObject({ name: 'odin-web' });
    });

    it("a container of another project that publishes the port is refused, never routed to", () => {
      const publisher = container('odin-pub', ['app'], { labels: { [PROJECT_LABEL]: 'odin' }, ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: PORT }] });
      expect(refusal(() => locateService(topology([publisher]), { hostPort: PORT, project: 'consilio' })).code).toBe('TARGET_OTHER_PROJECT');
    });
  });

  describe('only what cloudflared reaches at the port is a candidate (issue 27, item 4)', () => {
    const onHost = { kind: 'host' as const };
    const inEdge = { kind: 'container' as const, name: 'cloudflared', networkMode: 'edge', networks: ['edge'], hostGatewayNames: [] };
    const edged = container('edged', ['edge']);

    it('cloudflared on the host: a container listening only inside its own namespace is not a candidate beside a host process', () => {
      const found = locateService(topology([web]), { hostPort: PORT, cloudflared: onHost, evidence: evidence(['127.0.0.1'], [{ name: 'web', addresses: ['0.0.0.0'] }]) });
      expect(found.placement).toEqual({ kind: 'host', port: PORT, listenAddress: '127.0.0.1' });
      expect(found.evidence).toContain(`container "web" listens on port ${PORT} only where cloudflared does not reach it at that port`);
    });

    it('cloudflared in a container: the container on its network is the candidate, a loopback host process is not', () => {
      const found = locateService(topology([edged]), { hostPort: PORT, cloudflared: inEdge, evidence: evidence(['127.0.0.1'], [{ name: 'edged', addresses: ['0.0.0.0'] }]) });
      expect(found.placement).toMatchObject({ kind: 'container', name: 'edged', port: PORT });
    });

    it("two reachable candidates: the one labelled for the asking project breaks the tie; else ambiguous", () => {
      const mine = container('mine', ['edge'], { labels: { [PROJECT_LABEL]: 'consilio' } });
      const both = evidence([], [{ name: 'edged', addresses: ['0.0.0.0'] }, { name: 'mine', addresses: ['0.0.0.0'] }]);
      expect(locateService(topology([edged, mine]), { hostPort: PORT, project: 'consilio', cloudflared: inEdge, evidence: both }).placement).toMatchObject({ name: 'mine' });
      expect(refusal(() => locateService(topology([edged, mine]), { hostPort: PORT, project: null, cloudflared: inEdge, evidence: both })).code).toBe('TARGET_AMBIGUOUS');
    });

    it('nothing reachable: the container started after the port was allocated is named (its refusal has the fix); one already running then is not taken', () => {
      const listens = (startedAt: number) => evidence([], [{ name: 'web', addresses: ['0.0.0.0'], startedAt }]);
      const after = locateService(topology([web]), { hostPort: PORT, cloudflared: onHost, allocatedAt: 1_000, evidence: listens(2_000) });
      expect(after.placement).toMatchObject({ kind: 'container', name: 'web' });
      const before = locateService(topology([web]), { hostPort: PORT, cloudflared: onHost, allocatedAt: 1_000, evidence: listens(500) });
      expect(before.placement).toEqual({ kind: 'host', port: PORT, listenAddress: null });
      expect(before.listening).toBe(false);
      expect(before.evidence).toContain('was running before the port was allocated');
      // Labelled for the project, it is the project's whenever it started.
      const labelled = container('web', ['app'], { labels: { [PROJECT_LABEL]: 'consilio' } });
      expect(locateService(topology([labelled]), { hostPort: PORT, project: 'consilio', cloudflared: onHost, allocatedAt: 1_000, evidence: listens(500) }).placement).toMatchObject({ name: 'web' });
    });
  });
});
