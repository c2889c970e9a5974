import { describe, expect, it } from 'vitest';
import { describeDiff, diffTopology, renamesIn } from '../../../src/docker/topology-diff.ts';
import { hintFromDockerEvent } from '../../../src/docker/topology-events.ts';
import { container, network, topology } from './topology-fixtures.ts';

describe('diffTopology', () => {
  it('is empty for the same topology listed in another order', () => {
    const a = topology([container('web', ['edge', 'app']), container('api', ['app'])]);
    const b = { networks: [...a.networks].reverse(), containers: [container('api', ['app']), container('web', ['app', 'edge'])] };
    expect(diffTopology(a, b).empty).toBe(true);
  });

  it('keys by id: a rename is a change with the old and new names', () => {
    const before = topology([container('web', ['edge'])]);
    const after = topology([{ ...container('web', ['edge']), name: 'web-v2' }]);
    const diff = diffTopology(before, after);
    expect(diff.containers.added).toEqual([]);
    expect(diff.containers.changed[0]?.fields).toEqual(['name']);
    expect(renamesIn(diff)).toEqual(new Map([['web', 'web-v2']]));
    expect(describeDiff(diff)).toEqual(['container web renamed to web-v2']);
  });

  it('describes starts, network moves, port changes, additions and removals', () => {
    const before = topology([container('web', ['edge'], { state: 'exited' }), container('old', ['app'])]);
    const after = topology(
      [
        container('web', ['app'], { ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 3100 }] }),
        container('new', ['edge']),
      ],
      [network('bridge'), network('edge'), network('app'), network('extra', { subnet: '10.231.99.0/24' })],
    );
    expect(describeDiff(diffTopology(before, after))).toEqual([
      'network extra created',
      'container new created (running)',
      'container old removed',
      'container web exited → running',
      'container web joined app',
      'container web left edge',
      'container web port bindings changed',
    ]);
  });

  it('does not count an unknown command (read back from the store) as a change', () => {
    const live = topology([container('web', ['edge'], { command: 'httpd -f' })]);
    const stored = topology([container('web', ['edge'], { command: null })]);
    expect(diffTopology(stored, live).empty).toBe(true);
  });
});

describe('hintFromDockerEvent', () => {
  it.each([
    [{ Type: 'container', Action: 'start', Actor: { ID: 'c1' } }, { kind: 'container', id: 'c1', action: 'start' }],
    [{ Type: 'container', Action: 'rename', Actor: { ID: 'c1', Attributes: { oldName: '/a' } } }, { kind: 'container', id: 'c1', action: 'rename' }],
    [{ Type: 'network', Action: 'connect', Actor: { ID: 'n1', Attributes: { container: 'c2' } } }, { kind: 'container', id: 'c2', action: 'network-connect' }],
    [{ Type: 'network', Action: 'disconnect', Actor: { ID: 'n1', Attributes: { container: 'c2' } } }, { kind: 'container', id: 'c2', action: 'network-disconnect' }],
    [{ Type: 'network', Action: 'destroy', Actor: { ID: 'n1' } }, { kind: 'network', id: 'n1', action: 'destroy' }],
    [{ Type: 'container', Action: 'exec_start: sh', Actor: { ID: 'c1' } }, null],
    [{ Type: 'container', Action: 'health_status: healthy', Actor: { ID: 'c1' } }, null],
    [{ Type: 'image', Action: 'pull', Actor: { ID: 'busybox' } }, null],
  ])('%j → %j', (event, hint) => {
    expect(hintFromDockerEvent(event)).toEqual(hint);
  });
});
