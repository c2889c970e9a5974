import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { TunnelManagerError } from '../../errors.ts';
import { isProcessRunning, watchProcessEnd } from '../process-identity.ts';
import { waitForSpawn } from './spawn-failure.ts';
import type { ProcessDriver, ProcessExit, StopOutcome, TunnelProcess } from '../process-driver.ts';

export interface ChildDriverOptions {
  /** Executable and its arguments, e.g. ['cloudflared', 'tunnel', '--config', F, '--metrics', A, 'run', ID]. */
  argv: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logger?: Logger;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): ProcessExit {
  return {
    code,
    signal,
    reason: signal ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`,
  };
}

/**
 * cloudflared as a plain child of the manager: simplest, and it ends with the manager.
 * Exit is seen at once from the child's exit event. Graceful stop: SIGTERM, wait, SIGKILL.
 */
export class ChildProcessDriver implements ProcessDriver {
  readonly kind = 'child' as const;
  private child: ChildProcess | null = null;
  private exited: Promise<ProcessExit> | null = null;

  constructor(private readonly options: ChildDriverOptions) {}

  /** Our child while it runs, else null. */
  private running(): ChildProcess | null {
    const child = this.child;
    return child !== null && child.exitCode === null && child.signalCode === null ? child : null;
  }

  private alive(): boolean {
    return this.running() !== null;
  }

  async start(): Promise<TunnelProcess> {
    const running = this.running();
    if (running !== null) return { pid: running.pid ?? null, adopted: true };
    const [command, ...args] = this.options.argv;
    if (!command) {
      throw new TunnelManagerError({
        code: 'TUNNEL_START_FAILED',
        message: 'No cloudflared command is configured.',
        fix: 'Set cloudflared.command in the configuration, e.g. ["/usr/local/bin/cloudflared"].',
      });
    }
    const child = spawn(command, args, {
      cwd: this.options.cwd,
      env: this.options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = this.options.logger?.child({ component: 'cloudflared', pid: child.pid });
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) log?.info({ line }, 'cloudflared output');
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    // Listen for 'exit' by hand: events.once would also reject on 'error', which is handled below.
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(describeExit(code, signal))));
    try {
      await waitForSpawn(child, command);
    } catch (error) {
      this.exited = null;
      throw error;
    }
    this.child = child;
    return { pid: child.pid ?? null, adopted: false };
  }

  async stop(graceMs: number): Promise<StopOutcome> {
    const started = Date.now();
    const child = this.running();
    if (child === null || !this.exited) return { how: 'not-running', durationMs: 0 };
    const exited = this.exited;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!graceful) {
      child.kill('SIGKILL');
      await exited;
    }
    return { how: graceful ? 'graceful' : 'killed', durationMs: Date.now() - started };
  }

  async current(): Promise<TunnelProcess | null> {
    const running = this.running();
    return running !== null ? { pid: running.pid ?? null, adopted: false } : null;
  }

  watch(target: TunnelProcess, onExit: (exit: ProcessExit) => void): () => void {
    let active = true;
    if (this.child && target.pid !== null && this.child.pid === target.pid && this.exited) {
      if (!this.alive()) {
        const exit = describeExit(this.child.exitCode, this.child.signalCode);
        queueMicrotask(() => active && onExit(exit));
      } else {
        void this.exited.then((exit) => active && onExit(exit));
      }
      return () => {
        active = false;
      };
    }
    // Not our child (a pid restored from a snapshot): poll it.
    if (target.pid === null || !isProcessRunning(target.pid)) {
      queueMicrotask(() => active && onExit({ code: null, signal: null, reason: 'is no longer running' }));
      return () => {
        active = false;
      };
    }
    return watchProcessEnd(target.pid, () => onExit({ code: null, signal: null, reason: 'is no longer running' }));
  }
}
