import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { TunnelManagerError } from '../errors.ts';
import { messageOf, statusCodeOf } from '../thrown.ts';
import { CHECK_SCRIPT, parseScriptOutput, type CheckStep, type ConnectivityReport } from './connectivity-report.ts';
import type { CloudflaredPlacement } from './target-selection.ts';

export { parseScriptOutput, type CheckStep, type CheckStepName, type ConnectivityReport } from './connectivity-report.ts';

/**
 * Can cloudflared reach this target? Checked from cloudflared's own vantage point:
 * - cloudflared on the host (or in a container with network_mode host): name lookup, TCP connect
 *   and an HTTP request from this process;
 * - cloudflared in a container: the same three steps from a short-lived helper container that joins
 *   cloudflared's network namespace (`--network container:<cloudflared>`, so it also shares its
 *   /etc/hosts and DNS), or with `docker exec` inside the cloudflared container when asked to
 *   (the official cloudflared image has no shell, hence the helper by default).
 * Any HTTP answer, even 404 or 502, means the target is reachable; the status is reported.
 */

export interface ConnectivityCheckOptions {
  cloudflared: CloudflaredPlacement;
  /** The ingress service URL, e.g. `http://web:80`. */
  target: string;
  /** Image for the helper container; must be present locally and carry busybox (sh, nc, wget, nslookup). */
  helperImage?: string;
  /** `exec` runs the check inside the cloudflared container (it needs a busybox-like shell). */
  mode?: 'helper' | 'exec';
  /** Host header to send, as cloudflared would (the public hostname, or originRequest.httpHostHeader). */
  hostHeader?: string;
  timeoutMs?: number;
}

const DEFAULT_HELPER_IMAGE = 'busybox:latest';
const DEFAULT_TIMEOUT_MS = 5_000;

export async function checkConnectivity(docker: Dockerode | null, options: ConnectivityCheckOptions): Promise<ConnectivityReport> {
  const url = parseTarget(options.target);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const placement = options.cloudflared;
  if (placement.kind === 'host' || placement.networkMode === 'host') {
    const vantage = placement.kind === 'host'
      ? 'from the host, where cloudflared runs'
      : `from the host, whose network cloudflared container "${placement.name}" shares (network_mode host)`;
    return checkFromHost(url, options.target, vantage, options.hostHeader, timeoutMs);
  }
  if (docker === null) throw new Error('checkConnectivity: a Docker client is needed when cloudflared runs in a container');
  return checkFromContainer(docker, url, options, placement.name, timeoutMs);
}

function parseTarget(target: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw invalidTarget(target, 'it is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidTarget(target, 'only http and https targets can be checked');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)$/.test(url.hostname)) throw invalidTarget(target, 'its host name has characters a host name cannot have');
  return url;
}

function invalidTarget(target: string, why: string): TunnelManagerError {
  return new TunnelManagerError({
    code: 'INPUT_INVALID',
    message: `Cannot check the target "${target}": ${why}.`,
    fix: 'Give the target as the ingress service URL, e.g. http://localhost:3100 or http://web:80.',
    details: { target },
  });
}

function portOf(url: URL): number {
  return url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

// ---------------------------------------------------------------------------------------------
// From the host

async function checkFromHost(url: URL, target: string, vantage: string, hostHeader: string | undefined, timeoutMs: number): Promise<ConnectivityReport> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = portOf(url);
  const steps: CheckStep[] = [];
  const report = (error: string | null, httpStatus: number | null): ConnectivityReport => ({
    ok: httpStatus !== null,
    target,
    method: 'host',
    vantage,
    steps,
    httpStatus,
    latencyMs: steps.find((s) => s.step === 'tcp' && s.ok)?.latencyMs ?? null,
    latencyResolutionMs: 1,
    error,
  });

  let started = performance.now();
  let addresses: string[];
  try {
    // Every address the name has (localhost is 127.0.0.1 and ::1): cloudflared tries each, so the check does too.
    addresses = net.isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((entry) => entry.address);
    steps.push({ step: 'resolve', ok: true, latencyMs: elapsed(started), detail: `${host} → ${addresses.join(', ')}` });
  } catch (error) {
    const detail = `${host} did not resolve: ${messageOf(error)}`;
    steps.push({ step: 'resolve', ok: false, latencyMs: elapsed(started), detail });
    return report(detail, null);
  }

  started = performance.now();
  const failures: string[] = [];
  let connected: string | null = null;
  for (const address of addresses) {
    const connectError = await tcpConnect(address, port, timeoutMs);
    if (connectError === null) {
      connected = address;
      break;
    }
    failures.push(`${address.includes(':') ? `[${address}]` : address}:${port} ${connectError}`);
  }
  steps.push({
    step: 'tcp',
    ok: connected !== null,
    latencyMs: elapsed(started),
    detail: connected !== null ? `TCP connect to ${connected}:${port} succeeded` : `TCP connect failed: ${failures.join(', ')}`,
  });
  if (connected === null) return report(failures.join(', '), null);

  started = performance.now();
  try {
    const status = await httpGet(url, hostHeader, timeoutMs);
    steps.push({ step: 'http', ok: true, latencyMs: elapsed(started), detail: `GET ${url.href} answered ${status}` });
    return report(null, status);
  } catch (error) {
    const detail = `GET ${url.href} failed: ${messageOf(error)}`;
    steps.push({ step: 'http', ok: false, latencyMs: elapsed(started), detail });
    return report(detail, null);
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (error: string | null) => {
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(null));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

function httpGet(url: URL, hostHeader: string | undefined, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, {
      method: 'GET',
      headers: { 'user-agent': 'tunnel-manager-connectivity-check', ...(hostHeader ? { host: hostHeader } : {}) },
      timeout: timeoutMs,
      ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {}),
    }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.once('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.once('error', reject);
    request.end();
  });
}

// ---------------------------------------------------------------------------------------------
// From cloudflared's container

async function checkFromContainer(
  docker: Dockerode,
  url: URL,
  options: ConnectivityCheckOptions,
  cloudflaredName: string,
  timeoutMs: number,
): Promise<ConnectivityReport> {
  const mode = options.mode ?? 'helper';
  const helperImage = options.helperImage ?? DEFAULT_HELPER_IMAGE;
  const method = mode === 'exec' ? 'exec' as const : 'helper-container' as const;
  const vantage = mode === 'exec'
    ? `inside cloudflared container "${cloudflaredName}" (docker exec)`
    : `from a helper container (${helperImage}) sharing the network namespace, /etc/hosts and DNS of cloudflared container "${cloudflaredName}"`;
  const failed = (error: string): ConnectivityReport => ({
    ok: false, target: options.target, method, vantage, steps: [], httpStatus: null, latencyMs: null, latencyResolutionMs: 10, error,
  });

  const cloudflared = docker.getContainer(cloudflaredName);
  let info: Dockerode.ContainerInspectInfo;
  try {
    info = await cloudflared.inspect();
  } catch (error) {
    return failed(`cloudflared container "${cloudflaredName}" could not be inspected: ${messageOf(error)}`);
  }
  if (!info.State.Running) return failed(`cloudflared container "${cloudflaredName}" is ${info.State.Status}, so nothing can be checked from it`);

  const timeoutSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const env = [
    `TM_HOST=${url.hostname.replace(/^\[|\]$/g, '')}`,
    `TM_PORT=${portOf(url)}`,
    `TM_URL=${url.href}`,
    `TM_HOST_HEADER=${options.hostHeader ?? ''}`,
    `TM_TIMEOUT=${timeoutSeconds}`,
  ];
  let output: string;
  try {
    output = mode === 'exec'
      ? await runExec(cloudflared, env, timeoutMs * 3 + 5_000)
      : await runHelper(docker, helperImage, info.Id, env, timeoutMs * 3 + 10_000);
  } catch (error) {
    return failed(messageOf(error));
  }
  return parseScriptOutput(output, options.target, method, vantage);
}

async function runHelper(docker: Dockerode, image: string, cloudflaredId: string, env: string[], deadlineMs: number): Promise<string> {
  let container: Dockerode.Container;
  try {
    container = await docker.createContainer({
      Image: image,
      Cmd: ['sh', '-c', CHECK_SCRIPT],
      Env: env,
      Labels: { 'tunnel-manager.probe': '1' },
      HostConfig: { NetworkMode: `container:${cloudflaredId}` },
    });
  } catch (error) {
    const status = statusCodeOf(error);
    throw new Error(status === 404
      ? `helper image "${image}" is not present locally; load it (\`docker pull ${image}\` or \`docker load\`) or set the helper image`
      : `helper container could not be created: ${messageOf(error)}`);
  }
  try {
    await container.start();
    const result = await Promise.race([
      container.wait().then(() => true),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), deadlineMs).unref()),
    ]);
    if (result === null) throw new Error(`helper container did not finish within ${deadlineMs} ms`);
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    return demultiplex(logs);
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

async function runExec(container: Dockerode.Container, env: string[], deadlineMs: number): Promise<string> {
  const exec = await container.exec({ Cmd: ['sh', '-c', CHECK_SCRIPT], Env: env, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  container.modem.demuxStream(stream, out, out);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`docker exec did not finish within ${deadlineMs} ms`)), deadlineMs);
    timer.unref();
    stream.on('end', () => { clearTimeout(timer); resolve(); });
    stream.on('error', (error: Error) => { clearTimeout(timer); reject(error); });
  });
  return Buffer.concat(chunks).toString('utf8');
}

/** `docker logs` without a TTY frames each chunk with an 8-byte header (stream, 0, 0, 0, length). */
export function demultiplex(buffer: Buffer): string {
  let text = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const length = buffer.readUInt32BE(offset + 4);
    text += buffer.subarray(offset + 8, offset + 8 + length).toString('utf8');
    offset += 8 + length;
  }
  return offset === 0 && buffer.length > 0 ? buffer.toString('utf8') : text;
}
