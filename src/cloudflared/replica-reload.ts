import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { TunnelManagerError } from '../errors.ts';
import type { CloudflaredConfig } from '../ingress-model.ts';
import { formatIngressIssues, validateCloudflaredConfig } from './ingress/ingress-validation.ts';
import { isProcessRunning } from './process-identity.ts';
import type { ProcessDriver, ProcessExit, TunnelProcess } from './process-driver.ts';
import { pidListensOn } from './socket-owner.ts';
import type { SpawnDriver, SpawnedProcess } from './drivers/spawn-driver.ts';

/**
 * Applying a new config.yml to a running tunnel.
 *
 * cloudflared does not hot-reload a locally managed config, but several replicas of one tunnel may run at
 * once. So `reloadWithReplica` starts a second replica on the new file, waits for its /ready to answer 200,
 * makes it the live process, then SIGTERMs the old one, which drains within its grace period: the edge
 * always has a ready connector, and no request is dropped. The reload is done once the new replica is live: the old
 * one drains in the background (cloudflared unregisters at once, then stays until the edge closes its connections
 * or its `--grace-period` ends), and its metrics address goes to a later replica only once it has ended.
 *
 * - The replica EXITS before it is ready (cloudflared refused the file): the old tunnel is left running
 *   untouched and RELOAD_FAILED says why, with the tail of cloudflared's log.
 * - The replica RUNS but is not ready in time: it is stopped and the old tunnel is left running untouched
 *   (RELOAD_FAILED, keptRunning). Never a restart: stopping the only working process before its successor is
 *   ready turned a slow replica into an outage (the successor was as slow, the start failed, backoff followed).
 * - Ready means proven: /ready answers 200 on the replica's metrics address AND the kernel says the replica's pid
 *   holds that listening socket AND it is still alive. Another program answering on the address is not the
 *   replica (it would die with EADDRINUSE after being promoted); the address is also checked free before spawning.
 * - The caller may abort (a restart or stop of the tunnel overtook the reload): the replica is stopped.
 *
 * `restartTunnel` is the plain restart any driver can do; `pushRemoteConfiguration` is the remotely managed
 * variant, where the configuration goes through the API and nothing restarts.
 */
export interface ReloadResult {
  strategy: 'replica' | 'restart' | 'remote';
  /** Why the replica strategy was not used, when it was asked for. */
  fallbackReason?: string;
  /** How long the reload waited after the new replica was ready for the old one to unregister (ms); it drains in the background. 0 for a restart. */
  overlapMs: number;
  durationMs: number;
  newPid: number | null;
  oldPid: number | null;
}

export interface ReplicaReloadOptions {
  driver: SpawnDriver;
  /** How long the new replica may take to answer /ready with 200. */
  readyTimeoutMs: number;
  /** Grace for the old replica to drain after SIGTERM, then SIGKILL (match cloudflared's --grace-period, plus a margin). */
  drainGraceMs: number;
  readyPollMs?: number;
  logger?: Logger;
  /** Aborted when the tunnel actor left the reload (a restart or stop overtook it): the replica is stopped. */
  signal?: AbortSignal;
  /** Checks that nothing listens on the replica's address before it is spawned (injected; tests pass their own). */
  assertAddressFree?: (address: string) => Promise<void>;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function isReady(metricsAddress: string): Promise<boolean> {
  try {
    const response = await fetch(`http://${metricsAddress}/ready`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

function logTail(path: string, lines = 12): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/**
 * The replica itself answers: /ready is 200 on its address, and (where /proc can tell) its pid holds the socket.
 * 'foreign' when something else answers there.
 */
async function replicaAnswers(replica: SpawnedProcess): Promise<'yes' | 'no' | 'foreign'> {
  if (!(await isReady(replica.metricsAddress))) return 'no';
  if (replica.pid === null) return 'yes';
  const owns = await pidListensOn(replica.pid, portOf(replica.metricsAddress));
  return owns === false ? 'foreign' : 'yes';
}

type ReplicaWait = { outcome: 'ready' } | { outcome: 'exited'; exit: ProcessExit } | { outcome: 'timeout'; foreign: boolean } | { outcome: 'aborted' };

/**
 * Waits for `replica` to be ready; reports 'exited' (with how) when it ends first, 'timeout' when time runs out
 * (noting whether a foreign process was answering on its address), 'aborted' when the caller gave up.
 */
async function waitForReplica(driver: SpawnDriver, replica: SpawnedProcess, timeoutMs: number, pollMs: number, signal?: AbortSignal): Promise<ReplicaWait> {
  let exit: ProcessExit | null = null;
  const unwatch = driver.watch(replica, (ended) => {
    exit = ended;
  });
  const deadline = Date.now() + timeoutMs;
  let foreign = false;
  try {
    for (;;) {
      if (exit !== null) return { outcome: 'exited', exit };
      if (signal?.aborted) return { outcome: 'aborted' };
      const answers = await replicaAnswers(replica);
      if (exit !== null) return { outcome: 'exited', exit };
      if (answers === 'yes' && (replica.pid === null || isProcessRunning(replica.pid))) return { outcome: 'ready' };
      if (answers === 'foreign') foreign = true;
      if (Date.now() >= deadline) return { outcome: 'timeout', foreign };
      await delay(pollMs);
    }
  } finally {
    unwatch();
  }
}

/** The reload's error when the replica was not ready (after stopping it when it still runs); the old tunnel keeps serving. */
async function replicaFailed(
  options: ReplicaReloadOptions,
  replica: SpawnedProcess,
  oldPid: number,
  waited: Exclude<ReplicaWait, { outcome: 'ready' }>,
): Promise<TunnelManagerError> {
  const { driver } = options;
  if (waited.outcome === 'aborted') {
    await driver.stopPid(replica.pid, 1_000);
    return new TunnelManagerError({
      code: 'RELOAD_FAILED',
      message: `The reload was overtaken (the tunnel is restarting or stopping): replica pid ${replica.pid} was stopped.`,
      fix: 'Nothing to do: the restart or stop that overtook it reads config.yml as it is now.',
      details: { oldPid, replicaPid: replica.pid, keptRunning: true },
    });
  }
  if (waited.outcome === 'exited') {
    const log = logTail(driver.logPath);
    // cloudflared's own reason is its last error line; the caller of a route request sees only the message.
    const reason = log.split('\n').reverse().find((line) => / ERR /.test(line))?.replace(/^\S+ ERR /, '');
    return new TunnelManagerError({
      code: 'RELOAD_FAILED',
      message: `cloudflared refused the new configuration: the replica ${waited.exit.reason} before it was ready${reason ? ` (${reason})` : ''}. The running tunnel (pid ${oldPid}) keeps the previous configuration.`,
      fix: `Read cloudflared's reason below (also in ${driver.logPath}), correct config.yml, and reload again.`,
      details: { oldPid, replicaPid: replica.pid, exit: waited.exit, log, keptRunning: true },
    });
  }
  options.logger?.warn({ replicaPid: replica.pid, timeoutMs: options.readyTimeoutMs, foreign: waited.foreign }, 'reload: replica not ready in time; the running tunnel keeps serving');
  await driver.stopPid(replica.pid, 1_000);
  const seconds = Math.round(options.readyTimeoutMs / 1000);
  return new TunnelManagerError({
    code: 'RELOAD_FAILED',
    message: waited.foreign
      ? `Another program, not the new replica (pid ${replica.pid}), answers on ${replica.metricsAddress}; the replica was stopped. The running tunnel (pid ${oldPid}) keeps the previous configuration.`
      : `The new replica (pid ${replica.pid}) was not ready within ${seconds} s and was stopped. The running tunnel (pid ${oldPid}) keeps the previous configuration.`,
    fix: waited.foreign
      ? `Free ${replica.metricsAddress} (\`ss -ltnp 'sport = :${portOf(replica.metricsAddress)}'\` names the program), then reload again.`
      : `Check cloudflared's log (${driver.logPath}) for why it was slow; if the machine is just slow, raise reload.replicaReadyTimeoutSeconds (now ${seconds}). Then reload again.`,
    details: { oldPid, replicaPid: replica.pid, timeoutMs: options.readyTimeoutMs, foreignAnswer: waited.foreign, keptRunning: true },
  });
}

/** Waits for the replica's address to be free of older replicas and of other programs; RELOAD_FAILED when it is taken. */
async function claimAddress(options: ReplicaReloadOptions, oldPid: number): Promise<string> {
  const address = options.driver.nextMetricsAddress();
  // An old replica of an earlier reload may still be draining on this address.
  await options.driver.drained(address);
  try {
    await options.assertAddressFree?.(address);
  } catch (error) {
    const cause = error instanceof Error ? error.message : String(error);
    throw new TunnelManagerError({
      code: 'RELOAD_FAILED',
      message: `No replica was started: its metrics address ${address} is taken by another program (${cause}). The running tunnel (pid ${oldPid}) keeps the previous configuration.`,
      fix: `Free ${address} (find the program with \`ss -ltnp 'sport = :${portOf(address)}'\`), or move cloudflared.metricsAddress to a port pair nobody else uses; then reload again.`,
      details: { oldPid, metricsAddress: address, keptRunning: true },
    });
  }
  return address;
}

/** Makes the ready replica live and drains the old process; resolves once the old one takes no new request. */
async function handOver(options: ReplicaReloadOptions, old: TunnelProcess & { pid: number }, replica: SpawnedProcess): Promise<number> {
  const { driver, logger } = options;
  const readyAt = Date.now();
  const oldAddress = old.handle ?? driver.metricsAddress();
  driver.promote(replica);
  const drain = driver.drain(old.pid, oldAddress, options.drainGraceMs);
  drain.ended
    .then((stopped) => logger?.info({ oldPid: old.pid, newPid: replica.pid, drainMs: stopped.durationMs, oldStopped: stopped.how }, 'reload: the old replica has drained'))
    .catch((error: unknown) => logger?.warn({ err: error, oldPid: old.pid }, 'reload: draining the old replica failed'));
  // Done once the old replica takes no new request (it unregistered at once on SIGTERM): from then on every request
  // reaches the new configuration. Its requests in flight finish in the background.
  await drain.unregistered;
  return Date.now() - readyAt;
}

export async function reloadWithReplica(options: ReplicaReloadOptions): Promise<ReloadResult> {
  const started = Date.now();
  const { driver } = options;
  const old = await driver.current();
  if (old === null || old.pid === null) {
    const fresh = await driver.start();
    return {
      strategy: 'restart',
      fallbackReason: 'no tunnel was running to overlap with, so the new config was applied by starting one',
      overlapMs: 0,
      durationMs: Date.now() - started,
      newPid: fresh.pid,
      oldPid: null,
    };
  }
  const oldPid = old.pid;
  const address = await claimAddress(options, oldPid);
  const replica = await driver.spawnProcess(address);
  options.logger?.info({ oldPid, replicaPid: replica.pid, metrics: replica.metricsAddress }, 'reload: replica started, waiting for /ready');
  const waited = await waitForReplica(driver, replica, options.readyTimeoutMs, options.readyPollMs ?? 50, options.signal);
  if (waited.outcome !== 'ready') throw await replicaFailed(options, replica, oldPid, waited);
  const overlapMs = await handOver(options, { ...old, pid: oldPid }, replica);
  options.logger?.info({ oldPid, newPid: replica.pid, overlapMs }, 'reload: replica live, the old one unregistered and drains');
  return { strategy: 'replica', overlapMs, durationMs: Date.now() - started, newPid: replica.pid, oldPid };
}

/** Stop, then start: works for every driver (a container or a unit restarts in place). */
export async function restartTunnel(driver: ProcessDriver, stopGraceMs: number): Promise<ReloadResult> {
  const started = Date.now();
  const old = await driver.current();
  await driver.stop(stopGraceMs);
  const fresh = await driver.start();
  return { strategy: 'restart', overlapMs: 0, durationMs: Date.now() - started, newPid: fresh.pid, oldPid: old?.pid ?? null };
}

/**
 * The remotely managed tunnel: validate with cloudflared's rules, then hand the configuration to
 * `putConfiguration` (the Cloudflare adapter's `PUT …/cfd_tunnel/{id}/configurations`). cloudflared picks
 * it up by itself; nothing restarts.
 */
export async function pushRemoteConfiguration(options: {
  config: CloudflaredConfig;
  putConfiguration: (config: CloudflaredConfig) => Promise<unknown>;
  currentPid?: number | null;
}): Promise<ReloadResult> {
  const started = Date.now();
  const issues = validateCloudflaredConfig(options.config);
  if (issues.length > 0) {
    throw new TunnelManagerError({
      code: 'INGRESS_INVALID',
      message: `The configuration was not pushed: cloudflared would refuse it.\n${formatIngressIssues(issues)}`,
      fix: 'Correct the ingress rules named above, then push again.',
      details: { issues },
    });
  }
  await options.putConfiguration(options.config);
  const pid = options.currentPid ?? null;
  return { strategy: 'remote', overlapMs: 0, durationMs: Date.now() - started, newPid: pid, oldPid: pid };
}
