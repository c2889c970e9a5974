import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { TunnelManagerError } from '../../errors.ts';
import { endWhenIdle, untilUnregistered } from './drain-watch.ts';
import { isProcessRunning, isRunningCommand, waitForProcessEnd, watchProcessEnd } from '../process-identity.ts';
import { waitForSpawn } from './spawn-failure.ts';
import type { ProcessDriver, ProcessExit, StopOutcome, TunnelProcess } from '../process-driver.ts';
import { SpawnPidfiles, type PidfileRecord } from './spawn-pidfiles.ts';
import { buildTunnelArgv } from '../tunnel-command.ts';

/**
 * cloudflared started by the manager itself, detached, with a pidfile: the process outlives the manager,
 * and a manager that starts again ADOPTS it (same pid) instead of restarting the tunnel — an upgrade or a
 * crash of the manager costs no tunnel downtime.
 *
 * The pidfile is the driver's own (JSON: pid, argv, metrics address, start time; spawn-pidfiles.ts), written atomically right
 * after the spawn. It is trusted only when /proc says the pid is still running exactly the recorded
 * command line; a stale pidfile (pid gone, or reused by another program) is discarded.
 *
 * Replicas take turns on three metrics addresses (the configured one and `replicaMetricsAddresses`), so a reload can
 * run a new replica next to the live one while the one before still drains (src/cloudflared/replica-reload.ts);
 * `metricsAddress()` says where the live one answers.
 *
 * Processes it started that are not the live one (a reload's replica until it is promoted, the old one while it
 * drains) are listed in `<pidfile>.others`. A manager killed in the middle of a reload leaves them running: the
 * next manager stops them (`reapAbandoned`, at boot and before any new spawn), or they would keep serving an
 * abandoned config and hold the metrics address the next replica needs.
 */
export interface SpawnDriverOptions {
  /** Executable and arguments before `tunnel`, e.g. ["/usr/local/bin/cloudflared"]. */
  command: string[];
  configPath: string;
  metricsAddress: string;
  /** Where new replicas' metrics servers listen, in turn with `metricsAddress`. Default: the same host, ports + 1 and + 2. */
  replicaMetricsAddresses?: string[];
  tunnelId: string;
  /** Extra tunnel flags, e.g. ["--grace-period", "30s", "--no-autoupdate"]. */
  flags?: string[];
  pidfile: string;
  /** cloudflared's stdout and stderr are appended here (a detached process cannot write to our pipes). Default: next to the pidfile. */
  logPath?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logger?: Logger;
  /** How often a process that is not our child is polled for its end (ms). Default 250. */
  watchIntervalMs?: number;
}

interface OwnChild {
  child: ChildProcess;
  exited: Promise<ProcessExit>;
}

export interface SpawnedProcess extends TunnelProcess {
  pid: number;
  argv: string[];
  metricsAddress: string;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): ProcessExit {
  return { code, signal, reason: signal ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}` };
}

function startFailed(message: string, fix: string): TunnelManagerError {
  return new TunnelManagerError({ code: 'TUNNEL_START_FAILED', message, fix });
}

function portAfter(address: string, by: number): string {
  const colon = address.lastIndexOf(':');
  return `${address.slice(0, colon)}:${Number(address.slice(colon + 1)) + by}`;
}

export class SpawnDriver implements ProcessDriver {
  readonly kind = 'spawn' as const;
  private live: PidfileRecord | null = null;
  private readonly children = new Map<number, OwnChild>();
  /** Processes being drained in the background, by the metrics address they hold until they end. */
  private readonly drains = new Map<string, Promise<StopOutcome>>();

  private readonly files: SpawnPidfiles;

  constructor(private readonly options: SpawnDriverOptions) {
    this.files = new SpawnPidfiles(options.pidfile, (argv) => this.metricsAddresses().find((address) => argv.join('\0') === this.argvFor(address).join('\0')));
  }

  get logPath(): string {
    return this.options.logPath ?? join(dirname(this.options.pidfile), 'cloudflared.log');
  }

  /** The metrics addresses replicas take in turn (the configured one first). */
  metricsAddresses(): string[] {
    return [this.options.metricsAddress, ...(this.options.replicaMetricsAddresses ?? [portAfter(this.options.metricsAddress, 1), portAfter(this.options.metricsAddress, 2)])];
  }

  /** Where the live process serves /ready and /metrics (where the next start will serve them when nothing runs). */
  metricsAddress(): string {
    const live = this.adoptLive();
    return live !== null && isProcessRunning(live.pid) ? live.metricsAddress : this.startAddress();
  }

  /**
   * Where a fresh start serves its metrics: the configured address, unless an old replica still drains on it (after a
   * crash that followed a reload), then the next one in turn that none holds.
   */
  startAddress(): string {
    return this.metricsAddresses().find((address) => !this.drains.has(address)) ?? this.options.metricsAddress;
  }

  /**
   * The live process, adopting the one the pidfile names when this driver has not started or adopted one yet.
   * A manager restored with the tunnel `running` never calls start(); the process it runs may be a promoted replica
   * on the other metrics address, and must be probed there.
   */
  private adoptLive(): PidfileRecord | null {
    if (this.live !== null) return this.live;
    const found = this.inspectPidfile();
    if (found !== null && 'adoptable' in found) this.live = found.adoptable;
    return this.live;
  }

  /**
   * The metrics address a new replica should take: the next one after the live process's that no draining replica
   * holds (or, when all are held, the one whose drain started first: the reload waits for it, `drained`).
   */
  nextMetricsAddress(): string {
    const addresses = this.metricsAddresses();
    const liveAt = addresses.indexOf(this.live?.metricsAddress ?? '');
    const inTurn = [...addresses.slice(liveAt + 1), ...addresses.slice(0, liveAt + 1)].filter((address) => address !== this.live?.metricsAddress);
    return inTurn.find((address) => !this.drains.has(address)) ?? [...this.drains.keys()].find((address) => inTurn.includes(address)) ?? inTurn[0] ?? this.options.metricsAddress;
  }

  argvFor(metricsAddress: string): string[] {
    return buildTunnelArgv({
      command: this.options.command,
      configPath: this.options.configPath,
      metricsAddress,
      tunnelId: this.options.tunnelId,
      flags: this.options.flags ?? [],
    });
  }

  /**
   * Stops the processes a previous manager started and left behind that are not the live one (a reload it did
   * not finish). Returns their pids. Our own command line is checked first, so a reused pid is never signalled.
   */
  async reapAbandoned(graceMs: number): Promise<number[]> {
    const livePid = this.live?.pid ?? this.files.read()?.pid ?? null;
    const reaped: number[] = [];
    for (const record of this.files.readOthers()) {
      if (record.pid === livePid || this.children.has(record.pid) || !isRunningCommand(record.pid, record.argv)) continue;
      this.options.logger?.warn({ pid: record.pid, metricsAddress: record.metricsAddress }, 'stopping a cloudflared left behind by an unfinished reload');
      await this.stopPid(record.pid, graceMs);
      reaped.push(record.pid);
    }
    this.files.writeOthers(this.files.readOthers().filter((record) => record.pid !== livePid && isRunningCommand(record.pid, record.argv)));
    return reaped;
  }

  /**
   * The process the pidfile names, when it is running exactly the recorded command line and that command
   * line is one this configuration would run. A pidfile that fails either check is removed (and a running
   * process with an outdated command line is reported, to be replaced by the caller).
   */
  private inspectPidfile(): { adoptable: PidfileRecord } | { outdated: PidfileRecord } | null {
    const record = this.files.read();
    if (record === null) return null;
    if (!isRunningCommand(record.pid, record.argv)) {
      this.options.logger?.info({ pid: record.pid, pidfile: this.options.pidfile }, 'pidfile names a process that is no longer cloudflared; discarding it');
      this.files.remove();
      return null;
    }
    const expected = this.metricsAddresses().map((address) => this.argvFor(address).join('\0'));
    return expected.includes(record.argv.join('\0')) ? { adoptable: record } : { outdated: record };
  }

  async start(): Promise<TunnelProcess> {
    if (this.live !== null && isProcessRunning(this.live.pid)) return { pid: this.live.pid, adopted: true, handle: this.live.metricsAddress };
    const found = this.inspectPidfile();
    if (found !== null && 'adoptable' in found) {
      this.live = found.adoptable;
      this.options.logger?.info({ pid: found.adoptable.pid }, 'adopted the running cloudflared');
      return { pid: found.adoptable.pid, adopted: true, handle: found.adoptable.metricsAddress };
    }
    if (found !== null && 'outdated' in found) {
      this.options.logger?.warn(
        { pid: found.outdated.pid, running: found.outdated.argv, wanted: this.argvFor(this.options.metricsAddress) },
        'the running cloudflared was started with another command line; replacing it',
      );
      await this.stopPid(found.outdated.pid, 10_000);
      this.files.remove();
    }
    const address = this.startAddress();
    await this.drained(address);
    const spawned = await this.spawnProcess(address);
    this.promote(spawned);
    return { pid: spawned.pid, adopted: false, handle: spawned.metricsAddress };
  }

  /**
   * Starts one more cloudflared with the given metrics address, detached, without touching the pidfile
   * (a reload's replica until it is promoted). Resolves once the process runs.
   */
  async spawnProcess(metricsAddress: string): Promise<SpawnedProcess> {
    await this.reapAbandoned(2_000);
    const argv = this.argvFor(metricsAddress);
    const [command, ...args] = argv;
    if (command === undefined) throw startFailed('No cloudflared command is configured.', 'Set cloudflared.command in the configuration, e.g. ["/usr/local/bin/cloudflared"].');
    mkdirSync(dirname(this.logPath), { recursive: true });
    const logFd = openSync(this.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: this.options.cwd,
        env: this.options.env ?? process.env,
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    const exited = new Promise<ProcessExit>((resolve) => {
      child.once('exit', (code, signal) => resolve(describeExit(code, signal)));
    });
    await waitForSpawn(child, command);
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw startFailed(`${command} started but the OS reported no pid for it.`, `Check that ${command} runs by hand; see ${this.logPath}.`);
    this.files.addOther({ pid, argv, metricsAddress, startedAt: Date.now() });
    this.children.set(pid, { child, exited });
    void exited.then(() => this.children.delete(pid));
    this.options.logger?.info({ pid, metricsAddress, log: this.logPath }, 'started cloudflared (detached)');
    return { pid, argv, metricsAddress, adopted: false, handle: metricsAddress };
  }

  /** Makes `process` the live one: the pidfile names it from now on. */
  promote(process: SpawnedProcess): void {
    const record: PidfileRecord = { pid: process.pid, argv: process.argv, metricsAddress: process.metricsAddress, startedAt: Date.now() };
    const previous = this.live;
    // The one it replaces is about to drain: listed until it has stopped, so a crash meanwhile does not orphan it.
    if (previous !== null && previous.pid !== record.pid && isProcessRunning(previous.pid)) this.files.addOther(previous);
    this.files.write(record);
    this.files.removeOther(record.pid);
    this.live = record;
  }

  /**
   * Stops a process that no longer serves (a reload's old replica) in the background: SIGTERM, at most `graceMs` for
   * its requests to finish, then SIGKILL; once it has unregistered everything and has no request in flight, a second
   * SIGTERM ends it at once (drain-watch.ts). It stays in `<pidfile>.others` until it has ended, and its metrics
   * address is handed to a new replica only after that (`drained`). `unregistered` resolves once it takes no new
   * request (every connection unregistered, or ended), or after `unregisterWaitMs` at most.
   */
  drain(pid: number, metricsAddress: string, graceMs: number, unregisterWaitMs = 3_000): { ended: Promise<StopOutcome>; unregistered: Promise<void> } {
    const ended = this.stopPid(pid, graceMs).finally(() => {
      if (this.drains.get(metricsAddress) === ended) this.drains.delete(metricsAddress);
    });
    this.drains.set(metricsAddress, ended);
    void endWhenIdle(pid, metricsAddress, ended, this.options.logger);
    return { ended, unregistered: untilUnregistered(pid, metricsAddress, ended, unregisterWaitMs) };
  }

  /** Resolves once no drained process holds `metricsAddress` any more. */
  async drained(metricsAddress: string): Promise<void> {
    await this.drains.get(metricsAddress);
  }

  /** SIGTERM, wait up to `graceMs`, then SIGKILL; works for our children and for adopted processes. */
  async stopPid(pid: number, graceMs: number): Promise<StopOutcome> {
    try {
      return await this.signalAndWait(pid, graceMs);
    } finally {
      if (!isProcessRunning(pid)) this.files.removeOther(pid);
    }
  }

  private async signalAndWait(pid: number, graceMs: number): Promise<StopOutcome> {
    const started = Date.now();
    if (!isProcessRunning(pid)) return { how: 'not-running', durationMs: 0 };
    const own = this.children.get(pid);
    const ended = (timeoutMs: number): Promise<boolean> =>
      own === undefined
        ? waitForProcessEnd(pid, timeoutMs)
        : Promise.race([own.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref())]);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return { how: 'not-running', durationMs: Date.now() - started };
    }
    if (await ended(graceMs)) return { how: 'graceful', durationMs: Date.now() - started };
    this.options.logger?.warn({ pid, graceMs }, 'cloudflared did not stop within the grace period; sending SIGKILL');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it ended between the two checks
    }
    await ended(5_000);
    return { how: 'killed', durationMs: Date.now() - started };
  }

  async stop(graceMs: number): Promise<StopOutcome> {
    let record = this.live;
    if (record === null) {
      const found = this.inspectPidfile();
      record = found === null ? null : 'adoptable' in found ? found.adoptable : found.outdated;
    }
    if (record === null) return { how: 'not-running', durationMs: 0 };
    const outcome = await this.stopPid(record.pid, graceMs);
    this.files.clear(record.pid);
    if (this.live?.pid === record.pid) this.live = null;
    return outcome;
  }

  async current(): Promise<TunnelProcess | null> {
    if (this.live === null) {
      const adopted = this.adoptLive();
      return adopted === null ? null : { pid: adopted.pid, adopted: true, handle: adopted.metricsAddress };
    }
    if (!isProcessRunning(this.live.pid)) return null;
    return { pid: this.live.pid, adopted: !this.children.has(this.live.pid), handle: this.live.metricsAddress };
  }

  watch(target: TunnelProcess, onExit: (exit: ProcessExit) => void): () => void {
    let active = true;
    const report = (exit: ProcessExit): void => {
      if (!active) return;
      active = false;
      onExit(exit);
    };
    const pid = target.pid;
    if (pid === null || !isProcessRunning(pid)) {
      queueMicrotask(() => report({ code: null, signal: null, reason: 'is no longer running' }));
      return () => {
        active = false;
      };
    }
    const own = this.children.get(pid);
    if (own !== undefined) {
      void own.exited.then(report);
      return () => {
        active = false;
      };
    }
    const stop = watchProcessEnd(pid, () => report({ code: null, signal: null, reason: `is no longer running (pid ${pid})` }), this.options.watchIntervalMs ?? 250);
    return () => {
      active = false;
      stop();
    };
  }
}
