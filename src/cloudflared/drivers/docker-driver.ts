import type Dockerode from 'dockerode';
import { TunnelManagerError } from '../../errors.ts';
import { messageOf, statusCodeOf } from '../../thrown.ts';
import type { ProcessDriver, ProcessExit, StopOutcome, TunnelProcess } from '../process-driver.ts';

/**
 * cloudflared in a Docker container, driven through the Engine API (dockerode): start, stop, restart,
 * inspect. The container usually exists already (compose, `docker run`); when it does not and a `create`
 * spec is given, the driver creates it, labelled as the manager's. A running container is adopted as is,
 * so a manager restart never restarts the tunnel.
 *
 * Graceful stop is the Engine's own: the container's stop signal (SIGTERM), then SIGKILL after the grace,
 * rounded up to whole seconds. A crash is seen at once through a `wait` request held open on the container.
 */
export interface DockerContainerSpec {
  image: string;
  /** The full command inside the container, e.g. buildTunnelArgv({ command: ['cloudflared'], … }). */
  cmd: string[];
  labels?: Record<string, string>;
  env?: string[];
  networkMode?: string;
  binds?: string[];
  extraHosts?: string[];
}

export interface DockerDriverOptions {
  docker: Dockerode;
  containerName: string;
  create?: DockerContainerSpec;
}

/** The label put on containers this driver creates. */
export const MANAGED_LABEL = 'tunnel-manager.managed';

function isNotFound(error: unknown): boolean {
  return statusCodeOf(error) === 404;
}

export class DockerDriver implements ProcessDriver {
  readonly kind = 'docker' as const;

  constructor(private readonly options: DockerDriverOptions) {}

  private unavailable(error: unknown, action: string): TunnelManagerError {
    return new TunnelManagerError({
      code: 'DOCKER_UNAVAILABLE',
      message: `Docker could not ${action} the container ${this.options.containerName}: ${messageOf(error)}`,
      fix: 'Check that dockerd is running (`docker info`) and that this user can reach its socket (member of the docker group, or docker.socketPath in the configuration).',
      details: { container: this.options.containerName, action, statusCode: statusCodeOf(error) },
      cause: error,
    });
  }

  /** The container's state, or null when no container has that name. */
  async inspect(): Promise<Dockerode.ContainerInspectInfo | null> {
    try {
      return await this.options.docker.getContainer(this.options.containerName).inspect();
    } catch (error) {
      if (isNotFound(error)) return null;
      throw this.unavailable(error, 'inspect');
    }
  }

  private async create(): Promise<void> {
    const spec = this.options.create;
    if (spec === undefined) {
      throw new TunnelManagerError({
        code: 'CONTAINER_NOT_FOUND',
        message: `No container named ${this.options.containerName} exists, and the docker driver was not told how to create one.`,
        fix: `Create it first (for example with docker compose, or \`docker run -d --name ${this.options.containerName} cloudflare/cloudflared tunnel --config … run …\`), or set cloudflared.containerName to the existing container's name.`,
        details: { container: this.options.containerName },
      });
    }
    try {
      await this.options.docker.createContainer({
        name: this.options.containerName,
        Image: spec.image,
        Cmd: spec.cmd,
        Env: spec.env,
        Labels: { ...(spec.labels ?? {}), [MANAGED_LABEL]: 'true' },
        HostConfig: {
          NetworkMode: spec.networkMode,
          Binds: spec.binds,
          ExtraHosts: spec.extraHosts,
        },
      });
    } catch (error) {
      if (statusCodeOf(error) === 404) {
        throw new TunnelManagerError({
          code: 'TUNNEL_START_FAILED',
          message: `The image ${spec.image} for the cloudflared container is not available: ${messageOf(error)}`,
          fix: `Pull or build it first: \`docker pull ${spec.image}\`.`,
          details: { image: spec.image },
          cause: error,
        });
      }
      throw this.unavailable(error, 'create');
    }
  }

  private static described(info: Dockerode.ContainerInspectInfo, adopted: boolean): TunnelProcess {
    return { pid: info.State.Pid > 0 ? info.State.Pid : null, adopted, handle: info.Id.slice(0, 12) };
  }

  async start(): Promise<TunnelProcess> {
    let info = await this.inspect();
    if (info?.State.Running === true) return DockerDriver.described(info, true);
    if (info === null) await this.create();
    try {
      await this.options.docker.getContainer(this.options.containerName).start();
    } catch (error) {
      // 304: already started by someone else in the meantime.
      if (statusCodeOf(error) !== 304) {
        throw new TunnelManagerError({
          code: 'TUNNEL_START_FAILED',
          message: `The cloudflared container ${this.options.containerName} did not start: ${messageOf(error)}`,
          fix: `See \`docker logs ${this.options.containerName}\` and \`docker inspect ${this.options.containerName}\`.`,
          details: { container: this.options.containerName },
          cause: error,
        });
      }
    }
    info = await this.inspect();
    if (info === null || !info.State.Running) {
      throw new TunnelManagerError({
        code: 'TUNNEL_START_FAILED',
        message: `The cloudflared container ${this.options.containerName} stopped right after starting (exit code ${info?.State.ExitCode ?? 'unknown'}).`,
        fix: `See why with \`docker logs ${this.options.containerName}\`.`,
        details: { container: this.options.containerName, exitCode: info?.State.ExitCode },
      });
    }
    return DockerDriver.described(info, false);
  }

  async stop(graceMs: number): Promise<StopOutcome> {
    const started = Date.now();
    const info = await this.inspect();
    if (info === null || !info.State.Running) return { how: 'not-running', durationMs: 0 };
    try {
      await this.options.docker.getContainer(this.options.containerName).stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (error) {
      if (statusCodeOf(error) !== 304) throw this.unavailable(error, 'stop');
    }
    const after = await this.inspect();
    // 137 = 128 + SIGKILL: the grace ran out (or the process was OOM-killed).
    const killed = after?.State.ExitCode === 137;
    return { how: killed ? 'killed' : 'graceful', durationMs: Date.now() - started };
  }

  /** `docker restart` with the grace as its stop timeout. */
  async restart(graceMs: number): Promise<TunnelProcess> {
    try {
      await this.options.docker.getContainer(this.options.containerName).restart({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (error) {
      if (isNotFound(error)) return this.start();
      throw this.unavailable(error, 'restart');
    }
    const info = await this.inspect();
    if (info === null) return this.start();
    return DockerDriver.described(info, false);
  }

  async current(): Promise<TunnelProcess | null> {
    const info = await this.inspect();
    return info?.State.Running === true ? DockerDriver.described(info, false) : null;
  }

  watch(target: TunnelProcess, onExit: (exit: ProcessExit) => void): () => void {
    const abort = new AbortController();
    let active = true;
    const report = (exit: ProcessExit): void => {
      if (!active) return;
      active = false;
      onExit(exit);
    };
    const container = this.options.docker.getContainer(this.options.containerName);
    container
      .wait({ condition: 'not-running', abortSignal: abort.signal })
      .then(async (result: { StatusCode?: number }) => {
        const code = result.StatusCode ?? null;
        const info = await this.inspect().catch(() => null);
        const replaced = info !== null && target.pid !== null && info.State.Running && info.State.Pid !== target.pid;
        report({
          code,
          signal: code === 137 ? 'SIGKILL' : null,
          reason: replaced
            ? `was replaced (container ${this.options.containerName} now runs pid ${info.State.Pid})`
            : code === 137
              ? `was killed by SIGKILL (container ${this.options.containerName})`
              : `exited with code ${code ?? 'unknown'} (container ${this.options.containerName})`,
        });
      })
      .catch((error: unknown) => {
        if (abort.signal.aborted) return;
        report({
          code: null,
          signal: null,
          reason: isNotFound(error) ? `is gone (container ${this.options.containerName} was removed)` : `could not be watched: ${messageOf(error)}`,
        });
      });
    return () => {
      active = false;
      abort.abort();
    };
  }
}
