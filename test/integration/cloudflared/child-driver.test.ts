import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise } from 'xstate';
import { tunnelMachine, type ProbeLoopInput, type StartTunnelInput, type StopTunnelInput, type TunnelEvent, type TunnelProcessInfo, type TunnelSettings, type WatchProcessInput } from '../../../machines/tunnel.machine.ts';
import { ChildProcessDriver } from '../../../src/cloudflared/drivers/child-driver.ts';
import { isProcessRunning } from '../../../src/cloudflared/process-identity.ts';

/** A real child process that ignores SIGTERM, as a hung cloudflared would. */
const STUBBORN = [process.execPath, '-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);"];
const POLITE = [process.execPath, '-e', "process.on('SIGTERM', () => process.exit(0)); console.log('ready'); setInterval(() => {}, 1000);"];

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A logger that keeps the child's output lines (the driver forwards them), so a test waits for the child to print
 * `ready` (its SIGTERM handler is installed by then) instead of for a fixed time.
 */
function outputWatcher(): { logger: Logger; printedReady: () => boolean } {
  const lines: string[] = [];
  const logger: Logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  return { logger, printedReady: () => lines.some((line) => line.includes('"line":"ready"')) };
}

const started: ChildProcessDriver[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const driver of started.splice(0)) await driver.stop(100);
});

describe('child process driver with real processes and signals', () => {
  it('stops a polite process with SIGTERM alone', async () => {
    const output = outputWatcher();
    const driver = new ChildProcessDriver({ argv: POLITE, logger: output.logger });
    started.push(driver);
    const proc = await driver.start();
    expect(proc.pid).toBeGreaterThan(0);
    await waitFor(output.printedReady);
    const outcome = await driver.stop(10_000);
    expect(outcome.how).toBe('graceful');
    expect(isProcessRunning(proc.pid!)).toBe(false);
    expect(await driver.current()).toBeNull();
    expect((await driver.stop(10_000)).how).toBe('not-running');
  });

  it('sees a crash at once through the exit event', async () => {
    const driver = new ChildProcessDriver({ argv: [process.execPath, '-e', 'setTimeout(() => process.exit(3), 100)'] });
    started.push(driver);
    const proc = await driver.start();
    const exit = await new Promise<{ code: number | null; reason: string }>((resolve) => driver.watch(proc, resolve));
    expect(exit).toMatchObject({ code: 3, reason: 'exited with code 3' });
  });

  it('watches a pid it did not start (restored from a snapshot) by polling', async () => {
    const output = outputWatcher();
    const other = new ChildProcessDriver({ argv: POLITE, logger: output.logger });
    started.push(other);
    const proc = await other.start();
    const driver = new ChildProcessDriver({ argv: POLITE });
    let gone = false;
    const cancel = driver.watch({ pid: proc.pid, adopted: true }, () => (gone = true));
    // Alive (it printed `ready`), so not reported gone.
    await waitFor(output.printedReady);
    expect(gone).toBe(false);
    await other.stop(5000);
    await waitFor(() => gone, 2000);
    cancel();
  });

  it('refuses a missing executable with a fix', async () => {
    const driver = new ChildProcessDriver({ argv: ['/nonexistent/cloudflared'] });
    await expect(driver.start()).rejects.toMatchObject({ code: 'TUNNEL_START_FAILED', fix: expect.stringContaining('cloudflared.command') });
  });

  it('the tunnel machine stops a process that ignores SIGTERM with SIGKILL after 10 s (simulated clock)', async () => {
    const output = outputWatcher();
    const driver = new ChildProcessDriver({ argv: STUBBORN, logger: output.logger });
    started.push(driver);
    const settings: TunnelSettings = {
      probeIntervalMs: 30_000,
      failuresBeforeRestart: 3,
      backoffMs: [5_000],
      resetAfterMs: 600_000,
      stopGraceMs: 10_000,
      autostart: true,
    };
    const outcomes: string[] = [];
    const machine = tunnelMachine.provide({
      actors: {
        startTunnel: fromPromise<TunnelProcessInfo, StartTunnelInput>(() => driver.start()),
        stopTunnel: fromPromise<void, StopTunnelInput>(async ({ input }) => {
          outcomes.push((await driver.stop(input.graceMs)).how);
        }),
        watchProcess: fromCallback<TunnelEvent, WatchProcessInput>(() => undefined),
        probeLoop: fromCallback<TunnelEvent, ProbeLoopInput>(() => undefined),
      },
    });
    const actor = createActor(machine, { input: settings }).start();
    await waitFor(() => JSON.stringify(actor.getSnapshot().value) === '{"running":"up"}');
    const pid = actor.getSnapshot().context.process!.pid!;
    // The child prints `ready` once its SIGTERM handler is installed.
    await waitFor(output.printedReady);

    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    actor.send({ type: 'STOP' });
    await vi.advanceTimersByTimeAsync(9_900);
    // Real time passes for the real process: it got SIGTERM and ignored it.
    await new Promise((resolve) => setImmediate(resolve));
    expect(isProcessRunning(pid)).toBe(true);
    expect(actor.getSnapshot().value).toBe('stopping');
    await vi.advanceTimersByTimeAsync(100);
    vi.useRealTimers();
    await waitFor(() => actor.getSnapshot().value === 'stopped');
    expect(outcomes).toEqual(['killed']);
    expect(isProcessRunning(pid)).toBe(false);
    actor.stop();
  });
});
