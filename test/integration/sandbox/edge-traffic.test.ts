import { join } from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandboxEdge, type SandboxEdge } from '../../../src/sandbox/edge/edge.ts';
import { STATUS_PATH } from '../../../src/sandbox/edge/standin-protocol.ts';
import { TrafficLog, type TrafficBucket } from '../../../src/sandbox/traffic-log.ts';
import { freePort, getViaEdge, runStandin, startOrigin, tempDir, waitFor, waitReady, writeTunnelConfig, type RunningStandin } from '../../helpers/standin-cloudflared.ts';

/** The sandbox edge records each visitor's request it answers (host, status, bytes sent), and nothing else. */

const dir = tempDir('edge-traffic');
const traffic = new TrafficLog();
let edge: SandboxEdge;
let origin: Awaited<ReturnType<typeof startOrigin>>;
let standin: RunningStandin | undefined;

beforeAll(async () => {
  edge = await startSandboxEdge({ listen: '127.0.0.1:0', traffic });
  origin = await startOrigin('app');
});

afterAll(async () => {
  if (standin && standin.child.exitCode === null && standin.child.signalCode === null) standin.child.kill('SIGKILL');
  await standin?.exited;
  await edge.close();
  await origin.close();
  dir.remove();
});

const requestsOf = (host: string, status?: number): number =>
  traffic
    .buckets()
    .filter((bucket) => bucket.host === host && (status === undefined || bucket.status === status))
    .reduce((sum, bucket) => sum + bucket.requests, 0);
const bucketsOf = (host: string): TrafficBucket[] => traffic.buckets().filter((bucket) => bucket.host === host);
/** Summed over minutes: a test may straddle one. */
const bytesOf = (host: string): number => bucketsOf(host).reduce((sum, bucket) => sum + bucket.bytes, 0);

/** Sends raw HTTP/1.1 requests on one socket, each after the previous one was recorded; every byte the edge sent back. */
async function rawExchange(requests: string[], recordedAfter: (index: number) => boolean): Promise<number> {
  const socket = net.connect(edge.port, '127.0.0.1');
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  const ended = new Promise<void>((resolve, reject) => {
    socket.on('end', () => resolve());
    socket.on('error', reject);
  });
  for (const [index, request] of requests.entries()) {
    socket.write(request);
    await waitFor(() => recordedAfter(index), 10_000, `request ${index} recorded`);
  }
  await ended;
  socket.destroy();
  return received;
}

describe('sandbox edge: traffic log', () => {
  it('records a 530 it answers with no connector, with its bytes, and not its status page', async () => {
    const answer = await getViaEdge(edge.port, 'Nobody.153.se:8790');
    expect(answer.status).toBe(530);
    expect(requestsOf('nobody.153.se', 530)).toBe(1);
    expect(bytesOf('nobody.153.se')).toBeGreaterThan(answer.body.length);
    await fetch(`http://${edge.address}${STATUS_PATH}`);
    expect(traffic.buckets().reduce((sum, bucket) => sum + bucket.requests, 0)).toBe(1);
  });

  it('records relayed requests by host and status with the bytes sent, counted per request on a keep-alive socket', async () => {
    const config = writeTunnelConfig(join(dir.path, 'config.yml'), [
      { hostname: 'app.153.se', service: `http://127.0.0.1:${origin.port}` },
      { hostname: 'broken.153.se', service: 'http_status:500' },
      { service: 'http_status:404' },
    ]);
    const metrics = `127.0.0.1:${await freePort()}`;
    standin = runStandin(['tunnel', '--config', config, '--metrics', metrics, 'run'], { TM_STANDIN_EDGE: edge.address });
    await waitReady(metrics, 4);
    // The stand-in's four registrations went through the public listener: none is a visitor's request.
    expect(traffic.buckets().filter((bucket) => bucket.host !== 'nobody.153.se')).toEqual([]);

    for (let i = 0; i < 3; i += 1) expect((await getViaEdge(edge.port, 'app.153.se', `/item/${i}`)).status).toBe(200);
    for (let i = 0; i < 2; i += 1) expect((await getViaEdge(edge.port, 'broken.153.se')).status).toBe(500);
    expect(requestsOf('app.153.se', 200)).toBe(3);
    expect(requestsOf('broken.153.se', 500)).toBe(2);
    expect(bytesOf('app.153.se')).toBeGreaterThan(3 * 'app GET /item/0 host=app.153.se\n'.length);
    expect(bytesOf('broken.153.se')).toBeGreaterThan(0);

    // Two requests on one keep-alive socket: the bytes recorded add up to exactly what the visitor received.
    const received = await rawExchange(
      ['GET /a HTTP/1.1\r\nHost: keep.153.se\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: keep.153.se\r\nConnection: close\r\n\r\n'],
      (index) => requestsOf('keep.153.se') === index + 1,
    );
    expect(requestsOf('keep.153.se', 404)).toBe(2);
    expect(bytesOf('keep.153.se')).toBe(received);
  });
});
