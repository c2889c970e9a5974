import { spawn } from 'node:child_process';
import { TunnelManagerError } from '../../errors.ts';
import { watchProcessEnd } from '../process-identity.ts';
import type { ProcessDriver, ProcessExit, StopOutcome, TunnelProcess } from '../process-driver.ts';

/**
 * cloudflared as its own systemd unit (e.g. the `cloudflared.service` that `cloudflared service install`
 * writes): `systemctl start|stop|restart`, state from `systemctl show`. A manager restart costs the tunnel
 * nothing — the unit simply keeps running and `start()` finds it active (adopted).
 *
 * The command line lives in the unit file, not here. Graceful stop is `systemctl stop` (the unit's
 * KillSignal, SIGTERM by default); if it has not finished after the grace, `systemctl kill -s SIGKILL`.
 * A crash is seen by polling the main pid (every 250 ms), then `systemctl show` says how it ended.
 */
export interface SystemdDriverOptions {
  unit: string;
  /** The systemctl executable. Default "systemctl", looked up on PATH (from `env` when given). */
  systemctl?: string;
  /** Talk to the user's manager (`systemctl --user`). */
  user?: boolean;
  env?: NodeJS.ProcessEnv;
  watchIntervalMs?: number;
}

export interface UnitState {
  mainPid: number;
  activeState: string;
  subState: string;
  /** 1 exited, 2 killed, 3 dumped (CLD_* codes), 0 when not known. */
  execMainCode: number;
  execMainStatus: number;
  result: string;
}

interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const SIGNAL_NAMES: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM' };

export class SystemdDriver implements ProcessDriver {
  readonly kind = 'systemd' as const;

  constructor(private readonly options: SystemdDriverOptions) {}

  private run(args: string[]): Promise<CommandResult> {
    const command = this.options.systemctl ?? 'systemctl';
    const full = [...(this.options.user === true ? ['--user'] : []), ...args];
    return new Promise((resolve, reject) => {
      const child = spawn(command, full, { env: this.options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.once('error', (error: NodeJS.ErrnoException) => {
        reject(
          new TunnelManagerError({
            code: 'TUNNEL_START_FAILED',
            message: `systemctl could not be run: ${error.message}`,
            fix:
              error.code === 'ENOENT'
                ? `This host has no ${command} on PATH. Use cloudflared.driver "spawn" (or "child"), or run the manager on a systemd host.`
                : `Check that ${command} is executable by this user.`,
            details: { command, errno: error.code },
            cause: error,
          }),
        );
      });
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  private failure(action: string, result: CommandResult): TunnelManagerError {
    const scope = this.options.user === true ? '--user ' : '';
    return new TunnelManagerError({
      code: action === 'stop' ? 'TUNNEL_STOP_FAILED' : 'TUNNEL_START_FAILED',
      message: `systemctl ${action} ${this.options.unit} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim() || 'no output'}`,
      fix: `See why with \`systemctl ${scope}status ${this.options.unit}\` and \`journalctl ${scope}-u ${this.options.unit} -n 50\`; check that the unit exists and that this user may manage it (polkit or sudoers).`,
      details: { unit: this.options.unit, action, exitCode: result.code, stderr: result.stderr.trim() },
    });
  }

  async state(): Promise<UnitState> {
    const result = await this.run(['show', '-p', 'MainPID,ActiveState,SubState,ExecMainCode,ExecMainStatus,Result', this.options.unit]);
    if (result.code !== 0) throw this.failure('show', result);
    const values = new Map<string, string>();
    for (const line of result.stdout.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1).trim());
    }
    return {
      mainPid: Number(values.get('MainPID') ?? 0) || 0,
      activeState: values.get('ActiveState') ?? 'unknown',
      subState: values.get('SubState') ?? 'unknown',
      execMainCode: Number(values.get('ExecMainCode') ?? 0) || 0,
      execMainStatus: Number(values.get('ExecMainStatus') ?? 0) || 0,
      result: values.get('Result') ?? 'unknown',
    };
  }

  private static running(state: UnitState): boolean {
    return (state.activeState === 'active' || state.activeState === 'reloading') && state.mainPid > 0;
  }

  async start(): Promise<TunnelProcess> {
    const before = await this.state();
    if (SystemdDriver.running(before)) return { pid: before.mainPid, adopted: true, handle: this.options.unit };
    const result = await this.run(['start', this.options.unit]);
    if (result.code !== 0) throw this.failure('start', result);
    const after = await this.state();
    if (!SystemdDriver.running(after)) {
      throw this.failure('start', { code: result.code, stdout: '', stderr: `the unit is ${after.activeState}/${after.subState} (result ${after.result}) right after starting` });
    }
    return { pid: after.mainPid, adopted: false, handle: this.options.unit };
  }

  async restart(): Promise<TunnelProcess> {
    const result = await this.run(['restart', this.options.unit]);
    if (result.code !== 0) throw this.failure('restart', result);
    const after = await this.state();
    return { pid: after.mainPid > 0 ? after.mainPid : null, adopted: false, handle: this.options.unit };
  }

  async stop(graceMs: number): Promise<StopOutcome> {
    const started = Date.now();
    const before = await this.state();
    if (!SystemdDriver.running(before) && before.activeState !== 'activating' && before.activeState !== 'deactivating') {
      return { how: 'not-running', durationMs: 0 };
    }
    let timer: NodeJS.Timeout | undefined;
    const stopping = this.run(['stop', this.options.unit]);
    const inTime = await Promise.race([
      stopping.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      await this.run(['kill', '-s', 'SIGKILL', this.options.unit]);
    }
    const result = await stopping;
    if (result.code !== 0 && inTime) throw this.failure('stop', result);
    return { how: inTime ? 'graceful' : 'killed', durationMs: Date.now() - started };
  }

  async current(): Promise<TunnelProcess | null> {
    const state = await this.state();
    return SystemdDriver.running(state) ? { pid: state.mainPid, adopted: false, handle: this.options.unit } : null;
  }

  watch(target: TunnelProcess, onExit: (exit: ProcessExit) => void): () => void {
    let active = true;
    const report = async (): Promise<void> => {
      let exit: ProcessExit = { code: null, signal: null, reason: `is no longer running (unit ${this.options.unit})` };
      try {
        const state = await this.state();
        if (state.execMainCode === 1) {
          exit = { code: state.execMainStatus, signal: null, reason: `exited with code ${state.execMainStatus} (unit ${this.options.unit} is ${state.activeState}/${state.subState})` };
        } else if (state.execMainCode === 2 || state.execMainCode === 3) {
          const signal = SIGNAL_NAMES[state.execMainStatus] ?? `signal ${state.execMainStatus}`;
          exit = { code: null, signal, reason: `was killed by ${signal} (unit ${this.options.unit} is ${state.activeState}/${state.subState})` };
        }
      } catch {
        // keep the plain reason
      }
      if (active) {
        active = false;
        onExit(exit);
      }
    };
    if (target.pid === null) {
      queueMicrotask(() => void report());
      return () => {
        active = false;
      };
    }
    const stop = watchProcessEnd(target.pid, () => void report(), this.options.watchIntervalMs ?? 250);
    return () => {
      active = false;
      stop();
    };
  }
}
