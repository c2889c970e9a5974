import { readFile } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyListeners, listenersOf, parseProcNetTcp, readListeningPart } from '../../../src/docker/listen-address.ts';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function listen(host: string, port = 0): Promise<number> {
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, resolve);
  });
  return (server.address() as AddressInfo).port;
}

describe('listen address from /proc/<pid>/net (this process, real sockets)', () => {
  it('sees a loopback-only listener as 127.0.0.1 only, and nothing on a port nobody listens on', async () => {
    const port = await listen('127.0.0.1');
    expect(await listenersOf(process.pid, port)).toEqual(['127.0.0.1']);
    expect(classifyListeners((await listenersOf(process.pid, port))!, 'here')).toMatchObject({ kind: 'only', address: '127.0.0.1' });
    const unused = await listen('127.0.0.1');
    servers.pop()!.close();
    expect(classifyListeners((await listenersOf(process.pid, unused))!, 'here')).toMatchObject({ kind: 'not-listening' });
  });

  it('sees 0.0.0.0 as every address, even next to a loopback listener on another port', async () => {
    const port = await listen('0.0.0.0');
    await listen('127.0.0.1');
    expect(await listenersOf(process.pid, port)).toEqual(['0.0.0.0']);
    expect(classifyListeners(['127.0.0.1', '0.0.0.0'], 'here')).toMatchObject({ kind: 'all' });
  });

  it('reads IPv6 listeners from tcp6', async () => {
    let port: number;
    try {
      port = await listen('::1');
    } catch {
      return expect(await listenersOf(process.pid, 1)).not.toBeNull(); // no IPv6 here: the IPv4 table still reads
    }
    expect(await listenersOf(process.pid, port)).toEqual(['::1']);
  });

  it('says it cannot tell when /proc of that process cannot be read', async () => {
    expect(await listenersOf(2 ** 22 + 1, 80)).toBeNull();
  });
});

describe('readListeningPart (this process, real sockets)', () => {
  it('reads every listener and stops before the first connection, however many there are', async () => {
    const port = await listen('127.0.0.1');
    await listen('0.0.0.0');
    const clients = await Promise.all(
      Array.from({ length: 40 }, () => new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      })),
    );
    try {
      const stateOf = (line: string) => line.trim().split(/\s+/)[3];
      const full = (await readFile(`/proc/${process.pid}/net/tcp`, 'utf8')).split('\n').slice(1).filter((line) => line.trim() !== '');
      // What the reader relies on: the kernel lists every listening socket before any other.
      const firstOther = full.findIndex((line) => stateOf(line) !== '0A' && stateOf(line) !== '03');
      expect(firstOther, 'the 40 connections are in the table').toBeGreaterThan(0);
      expect(full.slice(firstOther).some((line) => stateOf(line) === '0A'), 'a listener listed after a connection').toBe(false);
      const part = await readListeningPart(`/proc/${process.pid}/net/tcp`);
      const lines = part.split('\n').slice(1).filter((line) => line.trim() !== '');
      expect(lines.every((line) => stateOf(line) === '0A' || stateOf(line) === '03')).toBe(true);
      expect(lines.length).toBe(firstOther);
      expect(parseProcNetTcp(part, 4)).toEqual(parseProcNetTcp(['header', ...full].join('\n'), 4));
      expect(await listenersOf(process.pid, port)).toEqual(['127.0.0.1']);
    } finally {
      for (const client of clients) client.destroy();
    }
  });
});

describe('parseProcNetTcp', () => {
  it('decodes the kernel\'s little-endian words, keeps LISTEN sockets only, and reads IPv4-mapped IPv6 as IPv4', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0',
      '   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0',
      '   2: 0100007F:0050 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0',
    ].join('\n');
    expect(parseProcNetTcp(tcp, 4)).toEqual([{ address: '127.0.0.1', port: 80 }, { address: '0.0.0.0', port: 8080 }]);
    const tcp6 = [
      '  sl  local_address                         remote_address                        st',
      '   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A',
      '   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A',
      '   2: 0000000000000000FFFF00000100007F:0051 00000000000000000000000000000000:0000 0A',
    ].join('\n');
    expect(parseProcNetTcp(tcp6, 6)).toEqual([{ address: '::1', port: 80 }, { address: '::', port: 80 }, { address: '127.0.0.1', port: 81 }]);
  });
});
