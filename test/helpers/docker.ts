import { demultiplex } from '../../src/docker/connectivity-check.ts';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, realpath, rm, symlink, copyFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Dockerode from 'dockerode';
import { isProcessRunning } from '../../src/cloudflared/process-identity.ts';

/**
 * A real Docker engine for tests (docs/design.md, Testing without the internet).
 * - `dockerForTests()` waits for the socket. With CI set and no engine it throws (the suite fails);
 *   without CI it warns and returns null, and the file's `describe.skipIf(!docker)` skips visibly.
 * - `ensureTestImage()` builds local/busybox:tm-test with `docker import` from the host's busybox
 *   (no registry is reachable): sh, httpd, wget, nc, nslookup… and a /www/index.html.
 * - `DockerTestScope` creates labelled networks (each on a /24 no other network of the engine uses) and containers (ports on 127.0.0.1
 *   unless told otherwise) and removes all of them in `cleanup()`, which afterAll must call.
 */

export const TEST_LABEL = 'tunnel-manager.test';
export const TEST_IMAGE = 'local/busybox:tm-test';
const SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';
const APPLETS = ['sh', 'httpd', 'wget', 'nc', 'nslookup', 'sleep', 'cat', 'echo', 'ls', 'timeout', 'true', 'false', 'awk', 'tr', 'sed', 'grep', 'env', 'hostname', 'ip', 'ps', 'kill'];

export async function dockerForTests(what: string): Promise<Dockerode | null> {
  const docker = new Dockerode({ socketPath: SOCKET });
  const deadline = Date.now() + (existsSync(SOCKET) ? 30_000 : 3_000);
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      await docker.ping();
      return docker;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  const why = `no Docker engine answers on ${SOCKET} (${lastError instanceof Error ? lastError.message : String(lastError)})`;
  if (process.env.CI) {
    throw new Error(`${what}: ${why}. CI must run these tests against a real dockerd: run .ci/docker-up first.`);
  }
  console.warn(`\n[docker tests] SKIPPING ${what}: ${why}. Start dockerd (see .ci/docker-up) to run them; with CI set they fail instead.\n`);
  return null;
}

let imageBuilt: Promise<string> | null = null;

export function ensureTestImage(docker: Dockerode): Promise<string> {
  imageBuilt ??= buildTestImage(docker);
  return imageBuilt;
}

async function buildTestImage(docker: Dockerode): Promise<string> {
  try {
    await docker.getImage(TEST_IMAGE).inspect();
    return TEST_IMAGE;
  } catch {
    // not there yet: build it
  }
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((path) => existsSync(path));
  if (busybox === undefined) throw new Error('busybox is not installed on this host (apt-get install -y busybox-static); the Docker test image is built from it');
  const root = await mkdtemp(join(tmpdir(), 'tm-busybox-'));
  try {
    await mkdir(join(root, 'bin'));
    await mkdir(join(root, 'www'));
    await mkdir(join(root, 'tmp'));
    await mkdir(join(root, 'etc'));
    await copyFile(busybox, join(root, 'bin', 'busybox'));
    for (const applet of APPLETS) await symlink('busybox', join(root, 'bin', applet));
    await writeFile(join(root, 'www', 'index.html'), 'tunnel-manager test service\n');
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const progress = await docker.importImage(tar.stdout, { repo: 'local/busybox', tag: 'tm-test', changes: 'CMD ["/bin/sh"]' });
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(progress, (error: Error | null) => (error ? reject(error) : resolve())));
    await docker.getImage(TEST_IMAGE).inspect();
    return TEST_IMAGE;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export interface TestNetwork {
  name: string;
  subnet: string;
  /** The host's address on the network. */
  gateway: string;
}

export interface TestContainerSpec {
  name: string;
  cmd: string[];
  networks?: string[];
  networkMode?: string;
  /** containerPort → host port (0 = any); published on 127.0.0.1 unless `hostIp` is given. */
  ports?: Array<{ containerPort: number; hostPort?: number; hostIp?: string }>;
  extraHosts?: string[];
  labels?: Record<string, string>;
  start?: boolean;
  /** Default: the busybox test image. */
  image?: string;
  env?: string[];
  /** `host-path:container-path[:ro]` */
  binds?: string[];
}

export class DockerTestScope {
  readonly id: string;
  private readonly networks: string[] = [];

  constructor(readonly docker: Dockerode, readonly prefix: string) {
    this.id = `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  }

  /** A name unique to this run, e.g. `tmscn-1234-ab12-web`. */
  name(short: string): string {
    return `${this.id}-${short}`;
  }

  get labels(): Record<string, string> {
    return { [TEST_LABEL]: '1', [`${TEST_LABEL}.scope`]: this.id, [`${TEST_LABEL}.pid`]: String(process.pid) };
  }

  /**
   * A bridge network on a /24 of 10.231.0.0/16 that no network of this engine uses (another copy of the suite, a
   * person's own networks), with its gateway (the host's address on it) at .1.
   */
  async createNetwork(short: string): Promise<TestNetwork> {
    await this.removeAbandonedNetworks();
    const name = this.name(short);
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const taken = new Set((await this.docker.listNetworks()).flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet)));
      const third = Math.floor(Math.random() * 256);
      const network = { name, subnet: `10.231.${third}.0/24`, gateway: `10.231.${third}.1` };
      if (taken.has(network.subnet)) continue;
      try {
        await this.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: this.labels, IPAM: { Config: [{ Subnet: network.subnet, Gateway: network.gateway }] } });
      } catch (error) {
        // Taken meanwhile by someone else (Docker: "Pool overlaps with other one on this address space"): another one.
        if (/overlap/i.test(String((error as Error).message))) continue;
        throw error;
      }
      this.networks.push(name);
      return network;
    }
    throw new Error(`no free /24 in 10.231.0.0/16 for the test network ${name} after 20 tries`);
  }

  async createContainer(spec: TestContainerSpec): Promise<Dockerode.Container> {
    const [first, ...rest] = spec.networks ?? [];
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const port of spec.ports ?? []) {
      exposed[`${port.containerPort}/tcp`] = {};
      bindings[`${port.containerPort}/tcp`] = [{ HostIp: port.hostIp ?? '127.0.0.1', HostPort: String(port.hostPort ?? 0) === '0' ? '' : String(port.hostPort) }];
    }
    const container = await this.docker.createContainer({
      name: spec.name,
      Image: spec.image ?? TEST_IMAGE,
      Cmd: spec.cmd,
      ...(spec.env ? { Env: spec.env } : {}),
      Labels: { ...this.labels, ...spec.labels },
      ExposedPorts: exposed,
      StopTimeout: 1,
      HostConfig: {
        NetworkMode: spec.networkMode ?? first ?? 'bridge',
        PortBindings: bindings,
        ExtraHosts: spec.extraHosts ?? [],
        ...(spec.binds ? { Binds: spec.binds } : {}),
      },
    });
    for (const network of rest) await this.docker.getNetwork(network).connect({ Container: container.id });
    if (spec.start !== false) await container.start();
    return container;
  }

  /** A busybox httpd on `port` serving /www (index.html says "tunnel-manager test service"). */
  httpd(port = 80, bind?: string): string[] {
    return ['httpd', '-f', '-p', bind === undefined ? String(port) : `${bind}:${port}`, '-h', '/www'];
  }

  /**
   * An HTTP GET made from inside the network namespace of `container` (as cloudflared would make it),
   * with a throwaway busybox container. Retries while the answer is "connection refused" for up to `waitMs`
   * (a fresh httpd needs a moment); returns the body or the error text.
   */
  async wgetFrom(container: string, url: string, waitMs = 5_000): Promise<{ ok: boolean; output: string }> {
    const script = `end=$(( $(cut -d. -f1 /proc/uptime) + ${Math.ceil(waitMs / 1000)} )); ` +
      'while :; do out=$(timeout 3 wget -q -O - "$URL" 2>&1) && { echo "$out"; exit 0; }; ' +
      '[ $(cut -d. -f1 /proc/uptime) -ge $end ] && { echo "$out"; exit 1; }; sleep 0.2; done';
    const probe = await this.docker.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['sh', '-c', script],
      Env: [`URL=${url}`],
      Labels: this.labels,
      HostConfig: { NetworkMode: `container:${container}` },
    });
    try {
      await probe.start();
      const { StatusCode } = (await probe.wait()) as { StatusCode: number };
      const logs = await probe.logs({ stdout: true, stderr: true });
      return { ok: StatusCode === 0, output: demultiplex(logs).trim() };
    } finally {
      await probe.remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * Resolves once the service in `container` answers on `port` inside its own network namespace (a fresh httpd needs
   * a moment after the container is `running`): the signal a test waits for before asking for a route to it.
   */
  async untilAnswering(container: string, port: number, waitMs = 15_000): Promise<void> {
    const answer = await this.wgetFrom(container, `http://127.0.0.1:${port}/`, waitMs);
    if (!answer.ok) throw new Error(`${container} did not answer on port ${port} within ${waitMs} ms: ${answer.output}`);
  }

  /** Removes every container and network this scope labelled; safe to call when a test failed midway. */
  async cleanup(): Promise<void> {
    const filters = { label: [`${TEST_LABEL}.scope=${this.id}`] };
    const containers = await this.docker.listContainers({ all: true, filters });
    await Promise.all(containers.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    const networks = await this.docker.listNetworks({ filters });
    for (const network of networks) await this.docker.getNetwork(network.Id).remove().catch(() => undefined);
  }

  /**
   * Test networks (and their test containers) whose test process is gone: a crashed worker never ran `cleanup()`.
   * Only what carries our test label and names a pid that no longer runs; another suite's networks stay.
   */
  private async removeAbandonedNetworks(): Promise<void> {
    const networks = await this.docker.listNetworks({ filters: { label: [`${TEST_LABEL}=1`, `${TEST_LABEL}.pid`] } });
    for (const network of networks) {
      if (isProcessRunning(Number(network.Labels?.[`${TEST_LABEL}.pid`]))) continue;
      const info = await this.docker.getNetwork(network.Id).inspect().catch(() => null);
      for (const id of Object.keys(info?.Containers ?? {})) {
        const container = await this.docker.getContainer(id).inspect().catch(() => null);
        if (container?.Config.Labels?.[TEST_LABEL] === '1') await this.docker.getContainer(id).remove({ force: true }).catch(() => undefined);
      }
      await this.docker.getNetwork(network.Id).remove().catch(() => undefined);
    }
  }
}


export const STANDIN_IMAGE = 'local/tm-standin:test';

/**
 * An image that runs the stand-in cloudflared in a container, made from what is on this machine (no registry is
 * reachable): this Node binary with the shared libraries `ldd` names, and the built dist/ (test/global-setup.ts
 * builds it from the current sources before any test starts). Rebuilt once per test process, so it is never stale.
 * Run it as `node /app/dist/standin-cloudflared.js tunnel …`.
 */
let standinBuilt: Promise<string> | null = null;

export function ensureStandinImage(docker: Dockerode, distDir: string): Promise<string> {
  standinBuilt ??= buildStandinImage(docker, distDir);
  return standinBuilt;
}

async function buildStandinImage(docker: Dockerode, distDir: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'tm-standin-image-'));
  try {
    const node = await realpath(process.execPath);
    const ldd = await new Promise<string>((resolve, reject) => {
      const child = spawn('ldd', [node], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ldd ${node} exited ${code}`))));
    });
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const libraries = [...ldd.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((match) => match[1]!);
    for (const library of libraries) {
      await mkdir(join(root, dirname(library)), { recursive: true });
      await copyFile(await realpath(library), join(root, library));
    }
    await mkdir(join(root, 'usr/local/bin'), { recursive: true });
    await copyFile(node, join(root, 'usr/local/bin/node'));
    await cp(distDir, join(root, 'app/dist'), { recursive: true });
    await mkdir(join(root, 'etc'));
    await mkdir(join(root, 'tmp'));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/false\n');
    await writeFile(join(root, 'etc', 'nsswitch.conf'), 'hosts: files dns\n');
    const [repo, tag] = STANDIN_IMAGE.split(':') as [string, string];
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const progress = await docker.importImage(tar.stdout, { repo, tag, changes: 'ENV PATH=/usr/local/bin' });
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(progress, (error: Error | null) => (error ? reject(error) : resolve())));
    await docker.getImage(STANDIN_IMAGE).inspect();
    return STANDIN_IMAGE;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
