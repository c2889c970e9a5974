import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { TunnelManagerError } from '../errors.ts';
import type { CloudflaredPlacement } from './target-selection.ts';

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

export type CheckStepName = 'resolve' | 'tcp' | 'http';

export interface CheckStep {
  step: CheckStepName;
  ok: boolean;
  latencyMs: number | null;
  detail: string;
}

export interface ConnectivityReport {
  /** True when an HTTP answer came back from the target. */
  ok: boolean;
  target: string;
  /** `host`, `helper-container` or `exec`. */
  method: 'host' | 'helper-container' | 'exec';
  /** Exactly where the check ran from, in plain words. */
  vantage: string;
  steps: CheckStep[];
  httpStatus: number | null;
  /** TCP connect time (ms), when it connected. */
  latencyMs: number | null;
  /** Granularity of the latencies: 1 ms from the host, 10 ms inside a container (/proc/uptime). */
  latencyResolutionMs: number;
  error: string | null;
}

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
    const detail = `${host} did not resolve: ${(error as Error).message}`;
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
    const detail = `GET ${url.href} failed: ${(error as Error).message}`;
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

/** Runs inside busybox with TM_HOST, TM_PORT, TM_URL, TM_HOST_HEADER, TM_TIMEOUT in the environment. */
const CHECK_SCRIPT = [
  'now() { read up _ < /proc/uptime; echo "$up"; }',
  'is_ip() { case "$1" in *[!0-9.]*) case "$1" in *:*) return 0;; *) return 1;; esac;; *) return 0;; esac; }',
  's=$(now)',
  'if is_ip "$TM_HOST"; then r="ok literal address";',
  'elif awk -v h="$TM_HOST" \'{for(i=2;i<=NF;i++) if($i==h) f=1} END{exit !f}\' /etc/hosts; then r="ok /etc/hosts";',
  'elif nslookup "$TM_HOST" >/dev/null 2>&1; then r="ok DNS";',
  'else r="fail no /etc/hosts entry and DNS has no answer"; fi',
  'echo "@@resolve $s $(now) $r"',
  'case "$r" in fail*) exit 0;; esac',
  's=$(now)',
  'out=$(nc -w "$TM_TIMEOUT" "$TM_HOST" "$TM_PORT" -e true 2>&1); rc=$?',
  'echo "@@tcp $s $(now) $rc $(echo "$out" | tr "\\n" " ")"',
  '[ "$rc" = 0 ] || exit 0',
  's=$(now)',
  'set -- -S -O /dev/null',
  '[ -n "$TM_HOST_HEADER" ] && set -- "$@" --header "Host: $TM_HOST_HEADER"',
  'case "$TM_URL" in https:*) set -- "$@" --no-check-certificate;; esac',
  'out=$(timeout "$TM_TIMEOUT" wget "$@" "$TM_URL" 2>&1); rc=$?',
  'echo "@@http $s $(now) $rc"',
  'echo "$out" | sed "s/^/@@| /"',
].join('\n');

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
    return failed(`cloudflared container "${cloudflaredName}" could not be inspected: ${(error as Error).message}`);
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
    return failed((error as Error).message);
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
    const status = (error as { statusCode?: number }).statusCode;
    throw new Error(status === 404
      ? `helper image "${image}" is not present locally; load it (\`docker pull ${image}\` or \`docker load\`) or set the helper image`
      : `helper container could not be created: ${(error as Error).message}`);
  }
  try {
    await container.start();
    const result = await Promise.race([
      container.wait() as Promise<{ StatusCode: number }>,
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

export function parseScriptOutput(output: string, target: string, method: ConnectivityReport['method'], vantage: string): ConnectivityReport {
  const steps: CheckStep[] = [];
  let httpStatus: number | null = null;
  let error: string | null = null;
  const lines = output.split('\n');
  const httpLines = lines.filter((line) => line.startsWith('@@| ')).map((line) => line.slice(4));
  const ms = (start: string, end: string) => Math.round((Number(end) - Number(start)) * 1000);
  for (const line of lines) {
    const match = /^@@(resolve|tcp|http) (\S+) (\S+) ?(.*)$/.exec(line);
    if (match === null) continue;
    const [, step, start, end, rest] = match as unknown as [string, CheckStepName, string, string, string];
    if (step === 'resolve') {
      const ok = rest.startsWith('ok');
      steps.push({ step, ok, latencyMs: ms(start, end), detail: `${new URL(target).hostname}: ${rest.replace(/^(ok|fail) /, '')}` });
      if (!ok) error = `${new URL(target).hostname} does not resolve from cloudflared's network namespace`;
    } else if (step === 'tcp') {
      const [code, ...words] = rest.split(' ');
      const ok = code === '0';
      const detail = ok ? 'TCP connect succeeded' : `TCP connect failed: ${words.join(' ').trim() || `nc exited ${code}`}`;
      steps.push({ step, ok, latencyMs: ms(start, end), detail });
      if (!ok) error = detail;
    } else {
      const statusLine = httpLines.map((l) => /HTTP\/\d(?:\.\d)? (\d{3})/.exec(l)).find((m) => m !== null);
      httpStatus = statusLine ? Number(statusLine[1]) : null;
      const detail = httpStatus !== null
        ? `GET ${target} answered ${httpStatus}`
        : `GET ${target} failed: ${httpLines.map((l) => l.trim()).filter((l) => l !== '').join(' ') || `wget exited ${rest}`}`;
      steps.push({ step, ok: httpStatus !== null, latencyMs: ms(start, end), detail });
      if (httpStatus === null) error = detail;
    }
  }
  if (steps.length === 0) error = `the check produced no result: ${output.trim().slice(0, 300) || 'no output'}`;
  return {
    ok: httpStatus !== null,
    target,
    method,
    vantage,
    steps,
    httpStatus,
    latencyMs: steps.find((s) => s.step === 'tcp' && s.ok)?.latencyMs ?? null,
    latencyResolutionMs: 10,
    error,
  };
}
