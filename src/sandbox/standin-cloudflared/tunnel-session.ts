import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import type { TunnelRunOptions } from './command-line.ts';
import { EdgeConnector } from './edge-connector.ts';
import type { FaultFileDirectives, FaultKnobs } from './fault-knobs.ts';
import { RequestCounters } from './request-counters.ts';

export type Level = 'DBG' | 'INF' | 'WRN' | 'ERR';
export type Log = (level: Level, message: string) => void;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One running tunnel of the stand-in: its connections to the sandbox edge (or simulated ones), the pidfile, the
 * TM_STANDIN_EXIT_AFTER timer, and the signals — the first drains within the grace period, a second exits at once.
 * `finished` resolves with the exit code.
 */
export class TunnelSession {
  readonly counters = new RequestCounters();
  readonly connectorId = randomUUID();
  readonly finished: Promise<number>;
  private connector: EdgeConnector | null = null;
  private simulatedReady = 0;
  private shuttingDown = false;
  private pidfileWritten = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private finish: (code: number) => void = () => undefined;
  private readonly onSignal = (signal: NodeJS.Signals): void => this.signalled(signal);

  constructor(
    private readonly options: TunnelRunOptions,
    private readonly knobs: FaultKnobs,
    private readonly faults: FaultFileDirectives,
    private readonly tunnelId: string,
    private readonly log: Log,
  ) {
    this.finished = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
  }

  /** How many connections /ready and the metrics report. */
  readyConnections(): number {
    if (this.knobs.neverReady) return 0;
    return this.connector !== null ? this.connector.readyConnections : this.simulatedReady;
  }

  /** Arms TM_STANDIN_EXIT_AFTER, listens for signals and connects (after the slow start, if any). */
  start(originUrl: string): void {
    if (this.knobs.exitAfterMs !== null) {
      this.timers.push(
        setTimeout(() => {
          this.log('ERR', `TM_STANDIN_EXIT_AFTER reached: exiting with code 1 as a crashed cloudflared would`);
          this.finish(1);
        }, this.knobs.exitAfterMs),
      );
    }
    process.on('SIGTERM', this.onSignal);
    process.on('SIGINT', this.onSignal);
    void this.connect(originUrl);
  }

  /** After `finished`: signals off, timers cleared, connections closed. */
  stop(): void {
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
    this.timers.forEach((timer) => clearTimeout(timer));
    this.connector?.stop();
  }

  /** The last step: the pidfile goes once everything else stopped. */
  removePidfile(): void {
    if (this.pidfileWritten && this.options.pidfile !== null) rmSync(this.options.pidfile, { force: true });
  }

  private writePidfile(): void {
    if (this.options.pidfile === null || this.pidfileWritten) return;
    this.pidfileWritten = true;
    writeFileSync(this.options.pidfile, `${process.pid}\n`);
  }

  private signalled(signal: NodeJS.Signals): void {
    if (this.knobs.ignoreSigterm) {
      this.log('WRN', `Received ${signal} and ignoring it (TM_STANDIN_IGNORE_SIGTERM)`);
      return;
    }
    if (this.shuttingDown) {
      this.log('INF', `Received a second signal ${signal}: exiting now`);
      this.finish(0);
      return;
    }
    this.shuttingDown = true;
    this.log('INF', `Initiating graceful shutdown due to signal ${signal} ...`);
    this.connector?.stop();
    this.simulatedReady = 0;
    this.drain(Date.now());
  }

  /**
   * Requests the edge sent just before it saw the connections close still arrive: wait a moment for them, then until
   * nothing is in flight, or the grace period ends.
   */
  private drain(unregisteredAt: number): void {
    const { counters } = this;
    const deadline = unregisteredAt + this.options.gracePeriodMs;
    const now = Date.now();
    const settled = now - unregisteredAt >= Math.min(200, this.options.gracePeriodMs);
    if ((settled && counters.concurrentRequests === 0) || now >= deadline) {
      if (counters.concurrentRequests > 0) this.log('WRN', `Grace period over with ${counters.concurrentRequests} request(s) still in flight`);
      this.finish(0);
      return;
    }
    this.timers.push(setTimeout(() => this.drain(unregisteredAt), 20));
  }

  private async connect(originUrl: string): Promise<void> {
    const slowStartMs = this.faults.slowStartMs ?? this.knobs.slowStartMs;
    if (slowStartMs > 0) {
      this.log('INF', `Slow start: connecting in ${slowStartMs} ms (${this.faults.slowStartMs !== null ? 'TM_STANDIN_FAULT_FILE' : 'TM_STANDIN_SLOW_START'})`);
      await delay(slowStartMs);
    }
    if (this.shuttingDown) return;
    if (this.knobs.neverReady) {
      this.log('WRN', 'Never registering a connection (TM_STANDIN_NEVER_READY): /ready stays 503');
      return;
    }
    const wanted = this.knobs.readyConnections ?? this.options.haConnections ?? 4;
    const edgeAddress = this.options.edge ?? this.knobs.edge;
    if (edgeAddress === null) {
      this.simulatedReady = wanted;
      this.log('INF', `No sandbox edge configured (--edge or TM_STANDIN_EDGE): reporting ${wanted} ready connection(s) without one`);
      this.writePidfile();
      return;
    }
    this.connector = new EdgeConnector({
      edge: edgeAddress,
      connectorId: this.connectorId,
      tunnelId: this.tunnelId,
      originUrl,
      connections: wanted,
      log: this.log,
      onRegistered: (index, location) => {
        this.counters.registrations += 1;
        this.counters.locations.set(index, location);
      },
      onChange: (ready) => {
        if (ready > 0) this.writePidfile();
      },
    });
    this.connector.start();
  }
}
