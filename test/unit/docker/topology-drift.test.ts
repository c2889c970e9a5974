import { describe, expect, it } from 'vitest';
import { detectTargetDrift, type RouteTarget } from '../../../src/docker/topology-drift.ts';
import { container, topology } from './topology-fixtures.ts';

const cloudflared = container('cloudflared', ['edge'], { image: 'cloudflare/cloudflared:2024.1.0', extraHosts: [] });
const published = (hostPort: number) => [{ containerPort: 80, protocol: 'tcp' as const, hostIp: '127.0.0.1', hostPort }];
const route = (service: string, extra: Partial<RouteTarget> = {}): RouteTarget => ({ hostname: 'app.example.test', project: 'consilio', service, ...extra });

describe('detectTargetDrift', () => {
  it('reports nothing when the target still works', () => {
    const t = topology([cloudflared, container('web', ['edge'])]);
    expect(detectTargetDrift({ routes: [route('http://web:80')], before: t, after: t })).toEqual([]);
  });

  it('container moved off the shared network → network-changed with the exact fix', () => {
    const before = topology([cloudflared, container('web', ['edge'])]);
    const after = topology([cloudflared, container('web', ['app'])]);
    const [finding] = detectTargetDrift({ routes: [route('http://web:80')], before, after });
    expect(finding).toMatchObject({ cause: 'network-changed', previousTarget: 'http://web:80', proposal: { ok: false } });
    expect(finding!.event.data.recommendations).toEqual(expect.arrayContaining([expect.objectContaining({ command: 'docker network connect edge web' })]));
  });

  it('container gone → container-gone, nothing to propose', () => {
    const before = topology([cloudflared, container('web', ['edge'])]);
    const after = topology([cloudflared]);
    expect(detectTargetDrift({ routes: [route('http://web:80')], before, after })).toMatchObject([{ cause: 'container-gone', proposal: null }]);
  });

  it('container renamed → the new name', () => {
    const before = topology([cloudflared, container('web', ['edge'])]);
    const after = topology([cloudflared, { ...container('web', ['edge']), name: 'web-v2' }]);
    expect(detectTargetDrift({ routes: [route('http://web:80')], before, after })).toMatchObject([
      { cause: 'container-renamed', proposal: { ok: true, target: 'http://web-v2:80' } },
    ]);
  });

  it('container stopped → container-stopped, proposal says docker start', () => {
    const before = topology([cloudflared, container('web', ['edge'])]);
    const after = topology([cloudflared, container('web', ['edge'], { state: 'exited' })]);
    const [finding] = detectTargetDrift({ routes: [route('http://web:80')], before, after });
    expect(finding).toMatchObject({ cause: 'container-stopped', proposal: { ok: false, recommendations: [{ command: 'docker start web' }] } });
  });

  it('a container being removed behind a localhost route → container-gone, no new target, no `docker start`', () => {
    const before = topology([container('web', ['app'], { ports: published(3100) })]);
    for (const state of ['removing', 'dead']) {
      const after = topology([container('web', ['app'], { state })]);
      const [finding] = detectTargetDrift({ routes: [route('http://localhost:3100', { targetPort: 3100 })], before, after });
      expect(finding, state).toMatchObject({ cause: 'container-gone', proposal: null });
      expect(finding!.explanation).toContain('is being removed');
      expect(finding!.explanation).not.toContain('docker start');
    }
  });

  it('a stopped container behind a localhost route → container-stopped with `docker start`, and no new target', () => {
    const before = topology([container('web', ['app'], { ports: published(3100) })]);
    const after = topology([container('web', ['app'], { state: 'exited' })]);
    const [finding] = detectTargetDrift({ routes: [route('http://localhost:3100', { targetPort: 3100 })], before, after });
    expect(finding).toMatchObject({ cause: 'container-stopped', proposal: null });
    expect(finding!.explanation).toContain('docker start web');
  });

  it('port unpublished behind a localhost route (cloudflared on the host) → port-unpublished', () => {
    const before = topology([container('web', ['app'], { ports: published(3100) })]);
    const after = topology([container('web', ['app'])]);
    expect(detectTargetDrift({ routes: [route('http://localhost:3100', { targetPort: 3100 })], before, after })).toMatchObject([
      { cause: 'port-unpublished', previousTarget: 'http://localhost:3100' },
    ]);
  });

  it('leaves alone routes that were already broken and non-HTTP services', () => {
    const before = topology([cloudflared, container('web', ['app'])]);
    const after = topology([cloudflared]);
    expect(detectTargetDrift({ routes: [route('http://web:80'), route('http_status:404')], before, after })).toEqual([]);
  });

  it('addresses the event to the route owner', () => {
    const before = topology([cloudflared, container('web', ['edge'])]);
    const after = topology([cloudflared]);
    const [finding] = detectTargetDrift({ routes: [route('http://web:80', { project: 'odin' })], before, after });
    expect(finding!.event).toMatchObject({ kind: 'route.target_drift', project: 'odin', data: { hostname: 'app.example.test', cause: 'container-gone' } });
  });
});
