import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { portsInUse } from '../../../src/docker/ports-in-use.ts';
import { PortManager } from '../../../src/ports/port-manager.ts';
import type { Topology } from '../../../src/topology-model.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { PortsRepository } from '../../../src/store/ports-repository.ts';

let dir: string;
let db: Database;
let ports: PortManager;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-ports-'));
  db = openDatabase(join(dir, 'tm.db')).db;
  ports = new PortManager(new PortsRepository(db), [
    { name: 'consilio', ports: { from: 3100, to: 3102 } },
    { name: 'odin', ports: { from: 3300, to: 3399 } },
  ]);
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('PortManager on a real SQLite file', () => {
  it('hands out the next free port of the project range, then refuses when it is full', () => {
    expect(ports.allocate('consilio', 'web').port).toBe(3100);
    expect(ports.allocate('consilio', 'api', 3102).port).toBe(3102);
    expect(ports.allocate('consilio', 'admin').port).toBe(3101);
    expect(() => ports.allocate('consilio', 'one more')).toThrow(expect.objectContaining({ code: 'PORT_RANGE_EXHAUSTED' }));
    expect(ports.list('consilio').map((a) => [a.port, a.purpose])).toEqual([
      [3100, 'web'],
      [3101, 'admin'],
      [3102, 'api'],
    ]);
  });

  it('refuses a port outside the range with the range in the fix', () => {
    expect(() => ports.allocate('consilio', 'web', 3300)).toThrow(expect.objectContaining({ code: 'PORT_OUT_OF_RANGE', fix: expect.stringContaining('3100 to 3102') }));
  });

  it('refuses a taken port and changes nothing', () => {
    ports.allocate('odin', 'web', 3333);
    expect(() => ports.allocate('odin', 'again', 3333)).toThrow(expect.objectContaining({ code: 'PORT_TAKEN' }));
    expect(ports.list('odin')).toHaveLength(1);
  });

  it('checks ownership: a route may only target a port allocated to the asking project', () => {
    ports.allocate('odin', 'web', 3333);
    expect(ports.assertOwned('odin', 3333).purpose).toBe('web');
    expect(() => ports.assertOwned('consilio', 3333)).toThrow(expect.objectContaining({ code: 'PORT_NOT_OWNED' }));
    expect(() => ports.assertOwned('odin', 3334)).toThrow(expect.objectContaining({ code: 'PORT_NOT_OWNED', fix: expect.stringContaining('port_allocate') }));
  });

  it('releases only the owner’s port', () => {
    ports.allocate('odin', 'web', 3333);
    expect(() => ports.release('consilio', 3333)).toThrow(expect.objectContaining({ code: 'PORT_NOT_OWNED' }));
    ports.release('odin', 3333);
    expect(ports.list()).toEqual([]);
  });

  it('never hands the same port to two concurrent allocations (two connections to one file)', () => {
    const other = openDatabase(join(dir, 'tm.db')).db;
    const second = new PortManager(new PortsRepository(other), [{ name: 'odin', ports: { from: 3300, to: 3399 } }]);
    const got = [] as number[];
    for (let i = 0; i < 20; i += 1) {
      got.push(ports.allocate('odin', `a${i}`).port);
      got.push(second.allocate('odin', `b${i}`).port);
    }
    expect(new Set(got).size).toBe(40);
    other.close();
  });

  it('never hands out a port something listens on (a host process) or a running container publishes; a port asked for by number is given as asked (issue 27, item 4)', async () => {
    // A real listener of this process on a port the kernel picked; a range of that one port and the next.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const busy = (server.address() as AddressInfo).port;
    try {
      let topology: Topology = { networks: [], containers: [] };
      const manager = new PortManager(new PortsRepository(db), [{ name: 'tight', ports: { from: busy, to: busy } }]);
      manager.avoidPortsInUse(() => portsInUse(topology));
      expect(() => manager.allocate('tight', 'auto')).toThrow(expect.objectContaining({ code: 'PORT_RANGE_EXHAUSTED', message: expect.stringContaining('in use on the host') }));
      // Asked for by number (the project's service runs already): allocated.
      expect(manager.allocate('tight', 'my running service', busy).port).toBe(busy);
      manager.release('tight', busy);
      server.close();
      // Free on the host now, but a running container publishes it: still not handed out; once it stops, it is.
      const publisher = { id: 'p', name: 'pub', image: 'x', state: 'running', networkMode: 'bridge', labels: {}, extraHosts: [], networks: [], command: null, ports: [{ containerPort: 80, protocol: 'tcp' as const, hostIp: '127.0.0.1', hostPort: busy }] };
      topology = { networks: [], containers: [publisher] };
      expect(() => manager.allocate('tight', 'auto')).toThrow(expect.objectContaining({ code: 'PORT_RANGE_EXHAUSTED' }));
      topology = { networks: [], containers: [{ ...publisher, state: 'exited' }] };
      expect(manager.allocate('tight', 'auto').port).toBe(busy);
    } finally {
      server.close();
    }
  });
});
