import { fromCallback, fromPromise } from 'xstate';
import type { Logger } from 'pino';
import type {
  ProbeLoopInput,
  ProbeSample,
  ReloadOutcome,
  ReloadTunnelInput,
  ReplaceTunnelInput,
  StartTunnelInput,
  StopTunnelInput,
  TunnelEvent,
  TunnelMachine,
  TunnelProcessInfo,
  TunnelSettings,
  WatchProcessInput,
} from '../../../machines/tunnel.machine.ts';
import type { ProcessDriver } from '../../cloudflared/process-driver.ts';
import { assertAddressFree } from '../../cloudflared/metrics-address.ts';
import type { ReloadResult } from '../../cloudflared/replica-reload.ts';
import { TunnelManagerError } from '../../errors.ts';

export interface TunnelEffectsOptions {
  driver: ProcessDriver;
  /** One health probe of the running tunnel (process + /ready + /metrics). */
  probe: () => Promise<ProbeSample>;
  /** A start that is not ready within this long is a failed start. */
  startTimeoutMs: number;
  /** Poll period while waiting for a fresh start to become ready. */
  readyPollMs?: number;
  /** Applies the new config.yml; `signal` aborts when a restart or stop of the tunnel overtakes the reload. */
  reload: (input: ReloadTunnelInput, signal: AbortSignal) => Promise<ReloadResult>;
  /** An operator's restart: a new process ready before the old one stops where the driver can run two, else stop and start. */
  replace: (input: ReplaceTunnelInput, signal: AbortSignal) => Promise<ReloadResult>;
  /** Where cloudflared will serve /ready and /metrics; checked free before a fresh start. */
  metricsAddress?: () => string;
  /** Every probe sample, for the health history. */
  onSample?: (sample: ProbeSample, process: TunnelProcessInfo | null) => void;
  logger?: Logger;
}

/** How long a process that has just started or taken over may take to open all its connections before a probe. */
const FRESH_PROCESS_SETTLE_MS = 5_000;
/** How soon a degraded last probe is checked again when the loop starts. */
const DEGRADED_RECHECK_MS = 1_000;

const EVENT_OF: Record<ProbeSample['result'], 'PROBE_OK' | 'PROBE_DEGRADED' | 'PROBE_FAILED'> = {
  ok: 'PROBE_OK',
  degraded: 'PROBE_DEGRADED',
  failed: 'PROBE_FAILED',
};

/** Whether a process answers, from its probes: at once after a start, and again while it opens its connections. */
interface Readiness {
  waitUntilReady(settings: TunnelSettings): Promise<ProbeSample>;
  allConnections(ready: ProbeSample, until?: number): Promise<ProbeSample>;
}

function readinessOf(options: TunnelEffectsOptions): Readiness {
  const { driver, probe } = options;
  const readyPollMs = options.readyPollMs ?? 250;

  /**
   * Ready is the first probe that is not `failed` (the real cloudflared answers /ready 200 with its first connection and
   * opens the others one second apart: the probe loop checks again soon and waits for them, see below).
   */
  async function waitUntilReady(settings: TunnelSettings): Promise<ProbeSample> {
    const deadline = Date.now() + options.startTimeoutMs;
    let last: ProbeSample | null = null;
    while (Date.now() < deadline) {
      last = await probe();
      if (last.result !== 'failed') return last;
      if (!(await driver.current())) break;
      await new Promise((resolve) => setTimeout(resolve, readyPollMs));
    }
    await driver.stop(settings.stopGraceMs);
    throw new TunnelManagerError({
      code: 'TUNNEL_START_FAILED',
      message: `cloudflared did not become ready within ${Math.round(options.startTimeoutMs / 1000)} s${last?.error ? `: ${last.error}` : ''}.`,
      fix: 'Check the cloudflared lines in the service log (credentials file, config.yml, network), or raise restart.startTimeoutSeconds if the machine is slow.',
      details: { lastProbe: last },
    });
  }

  /** Probes again while `ready` says degraded, until `until` (a fresh process still opening its connections). */
  async function allConnections(ready: ProbeSample, until = Date.now() + FRESH_PROCESS_SETTLE_MS): Promise<ProbeSample> {
    let last = ready;
    while (last.result === 'degraded' && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, readyPollMs));
      const next = await probe();
      if (next.result === 'failed') break;
      last = next;
    }
    return last;
  }

  return { waitUntilReady, allConnections };
}

/**
 * Probes the running process every `intervalMs` and tells the machine what it found; a process that has just taken
 * over gets a few seconds to open all its connections before a probe says degraded.
 */
function probeLoopOf(options: TunnelEffectsOptions, readiness: Readiness) {
  const { probe, logger } = options;
  const { allConnections } = readiness;
  return fromCallback<TunnelEvent, ProbeLoopInput>(({ sendBack, input }) => {
    let busy = false;
    let active = true;
    let timer: NodeJS.Timeout | undefined;
    // The loop starts again each time a process takes over (a start, a reload, a restart): a probe in the first
    // seconds that finds fewer connections than expected waits for the rest before it says degraded.
    const settledAt = Date.now() + FRESH_PROCESS_SETTLE_MS;
    const tick = (): void => {
      if (busy) return;
      busy = true;
      probe()
        .then((sample) => (Date.now() < settledAt ? allConnections(sample, settledAt) : sample))
        .then((sample) => {
          if (!active) return;
          options.onSample?.(sample, input.process);
          sendBack({ type: EVENT_OF[sample.result], sample });
        })
        .catch((error: unknown) => logger?.error({ err: error }, 'health probe threw'))
        .finally(() => {
          busy = false;
        });
    };
    // The cadence survives reloads and restarts (each re-creates this loop): the next probe is due one interval
    // after the last one, not one interval after the loop started again.
    const last = input.lastProbe;
    const due = last === null ? input.intervalMs : Math.max(0, last.at + input.intervalMs - Date.now());
    // A degraded last probe (the start's own, say: ready with its first connection) is checked again within a second.
    const firstIn = last?.result === 'degraded' ? Math.min(due, DEGRADED_RECHECK_MS) : due;
    const first = setTimeout(() => {
      if (!active) return;
      tick();
      timer = setInterval(tick, input.intervalMs);
    }, firstIn);
    return () => {
      active = false;
      clearTimeout(first);
      clearInterval(timer);
    };
  });
}

/**
 * The tunnel machine with its effects: a process driver and a health probe.
 * A start is: start (or adopt) the process, then wait until a probe says ready; a start that never
 * becomes ready is stopped again and fails, which sends the machine to backoff.
 */
export function provideTunnelEffects(machine: TunnelMachine, options: TunnelEffectsOptions): TunnelMachine {
  const { driver, logger } = options;
  const readiness = readinessOf(options);
  const { waitUntilReady } = readiness;

  return machine.provide({
    actors: {
      startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(async ({ input }) => {
        if (options.metricsAddress && (await driver.current()) === null) await assertAddressFree(options.metricsAddress());
        const process = await driver.start();
        logger?.info({ pid: process.pid, adopted: process.adopted, driver: driver.kind }, process.adopted ? 'adopted running cloudflared' : 'started cloudflared');
        const ready = await waitUntilReady(input.settings);
        options.onSample?.(ready, process);
        return { pid: process.pid, adopted: process.adopted, ...(process.handle ? { handle: process.handle } : {}), ready };
      }),
      reloadTunnel: fromPromise<ReloadOutcome, ReloadTunnelInput>(async ({ input, signal }) => {
        const result = await options.reload(input, signal);
        logger?.info({ ...result, requests: input.requestIds.length }, 'reloaded cloudflared');
        // A replica is ready by construction; a restart must become ready like any start.
        if (result.strategy === 'restart') await waitUntilReady(input.settings);
        const current = await driver.current();
        return {
          process: { pid: result.newPid ?? current?.pid ?? null, adopted: false },
          strategy: result.strategy,
          ...(result.fallbackReason ? { fallbackReason: result.fallbackReason } : {}),
          durationMs: result.durationMs,
        };
      }),
      replaceTunnel: fromPromise<TunnelProcessInfo, ReplaceTunnelInput>(async ({ input, signal }) => {
        const result = await options.replace(input, signal);
        logger?.info({ ...result }, 'restarted cloudflared');
        if (result.strategy === 'restart') await waitUntilReady(input.settings);
        const current = await driver.current();
        return { pid: result.newPid ?? current?.pid ?? null, adopted: false };
      }),
      stopTunnel: fromPromise<void, StopTunnelInput>(async ({ input }) => {
        const outcome = await driver.stop(input.graceMs);
        logger?.info({ how: outcome.how, durationMs: outcome.durationMs }, 'stopped cloudflared');
      }),
      watchProcess: fromCallback<TunnelEvent, WatchProcessInput>(({ sendBack, input }) => {
        if (!input.process) return undefined;
        return driver.watch(input.process, (exit) => {
          logger?.warn({ exit }, 'cloudflared exited');
          sendBack({ type: 'PROCESS_EXITED', code: exit.code, signal: exit.signal, reason: exit.reason });
        });
      }),
      probeLoop: probeLoopOf(options, readiness),
    },
  });
}
