import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { TunnelManagerError } from '../errors.ts';
import type { CloudflaredConfig } from './ingress-model.ts';
import { formatIngressIssues, validateCloudflaredConfig } from './ingress-validation.ts';
import type { ProcessDriver, ProcessExit } from './process-driver.ts';
import type { SpawnDriver, SpawnedProcess } from './spawn-driver.ts';

/**
 * Applying a new config.yml to a running tunnel.
 *
 * cloudflared does not hot-reload a locally managed config, but several replicas of one tunnel may run at
 * once. So `reloadWithReplica` starts a second replica on the new file, waits for its /ready to answer 200,
 * makes it the live process, then SIGTERMs the old one, which drains within its grace period: the edge
 * always has a ready connector, and no request is dropped.
 *
 * - The replica EXITS before it is ready (cloudflared refused the file): the old tunnel is left running
 *   untouched and RELOAD_FAILED says why, with the tail of cloudflared's log.
 * - The replica RUNS but is not ready in time: fall back to a plain restart, and say so in the result.
 *
 * `restartTunnel` is the plain restart any driver can do; `pushRemoteConfiguration` is the remotely managed
 * variant, where the configuration goes through the API and nothing restarts.
 */
export interface ReloadResult {
  strategy: 'replica' | 'restart' | 'remote';
  /** Why the replica strategy was not used, when it was asked for. */
  fallbackReason?: string;
  /** How long old and new replicas both ran after the new one was ready (ms); 0 for a restart. */
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
  /** Grace for a plain restart's stop (the fallback). Default: drainGraceMs. */
  stopGraceMs?: number;
  readyPollMs?: number;
  logger?: Logger;
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

/** Waits for `replica` to be ready; reports 'exited' (with how) when it ends first, 'timeout' when time runs out. */
async function waitForReplica(
  driver: SpawnDriver,
  replica: SpawnedProcess,
  timeoutMs: number,
  pollMs: number,
): Promise<{ outcome: 'ready' } | { outcome: 'exited'; exit: ProcessExit } | { outcome: 'timeout' }> {
  let exit: ProcessExit | null = null;
  const unwatch = driver.watch(replica, (ended) => {
    exit = ended;
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (exit !== null) return { outcome: 'exited', exit };
      if (await isReady(replica.metricsAddress)) return { outcome: 'ready' };
      if (exit !== null) return { outcome: 'exited', exit };
      if (Date.now() >= deadline) return { outcome: 'timeout' };
      await delay(pollMs);
    }
  } finally {
    unwatch();
  }
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

  const replica = await driver.spawnProcess(driver.nextMetricsAddress());
  options.logger?.info({ oldPid: old.pid, replicaPid: replica.pid, metrics: replica.metricsAddress }, 'reload: replica started, waiting for /ready');
  const waited = await waitForReplica(driver, replica, options.readyTimeoutMs, options.readyPollMs ?? 50);

  if (waited.outcome === 'exited') {
    const log = logTail(driver.logPath);
    // cloudflared's own reason is its last error line; the caller of a route request sees only the message.
    const reason = log.split('\n').reverse().find((line) => / ERR /.test(line))?.replace(/^\S+ ERR /, '');
    throw new TunnelManagerError({
      code: 'RELOAD_FAILED',
      message: `cloudflared refused the new configuration: the replica ${waited.exit.reason} before it was ready${reason ? ` (${reason})` : ''}. The running tunnel (pid ${old.pid}) keeps the previous configuration.`,
      fix: `Read cloudflared's reason below (also in ${driver.logPath}), correct config.yml, and reload again.`,
      details: { oldPid: old.pid, replicaPid: replica.pid, exit: waited.exit, log, keptRunning: true },
    });
  }

  if (waited.outcome === 'timeout') {
    options.logger?.warn({ replicaPid: replica.pid, timeoutMs: options.readyTimeoutMs }, 'reload: replica not ready in time; falling back to a plain restart');
    await driver.stopPid(replica.pid, 1_000);
    const restarted = await restartTunnel(driver, options.stopGraceMs ?? options.drainGraceMs);
    return {
      ...restarted,
      fallbackReason: `the new replica (pid ${replica.pid}) did not answer /ready with 200 within ${options.readyTimeoutMs} ms`,
      durationMs: Date.now() - started,
    };
  }

  const readyAt = Date.now();
  driver.promote(replica);
  const stopped = await driver.stopPid(old.pid, options.drainGraceMs);
  const overlapMs = Date.now() - readyAt;
  options.logger?.info({ oldPid: old.pid, newPid: replica.pid, overlapMs, oldStopped: stopped.how }, 'reload: replica live, old one drained');
  return { strategy: 'replica', overlapMs, durationMs: Date.now() - started, newPid: replica.pid, oldPid: old.pid };
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
