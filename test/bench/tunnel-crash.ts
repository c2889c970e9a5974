/**
 * Crash of cloudflared (docs/design.md, Budgets): detected < 1 s after the process exits, and the restart follows the
 * backoff schedule.
 *
 * The whole service in this process (`startTestService`, sandbox mode), with a short backoff schedule so the run
 * stays short: restart.backoffSeconds [1, 2, 4] (the default is [5, 15, 30, 60, 300]; only the numbers differ,
 * the machine is the same) and resetAfterSeconds 600 (so the crashes count as one streak). The stand-in
 * cloudflared (a real process started by the spawn driver) is killed with SIGKILL, by the pid the tunnel actor
 * holds, several times in a row, each time once the tunnel is running again.
 *
 * Per crash: detection = from the SIGKILL to the tunnel actor's first snapshot outside `running` (the kill is
 * delivered at once, so this bounds the time from the exit); backoff = from entering `backoff` to entering
 * `starting`, against `context.currentDelayMs` and the schedule (the first crash of a streak restarts at once).
 *
 *   node --import tsx test/bench/tunnel-crash.ts [--crashes 5] [--write]
 */
import type { AnyActorRef } from 'xstate';
import type { TunnelContext } from '../../machines/tunnel.machine.ts';
import { stateToString } from '../../src/app/actors/transition-recorder.ts';
import { waitUntil } from '../helpers/cli.ts';
import { startTestService } from '../helpers/service.ts';
import { isMain, machineLine, spreadOf, verdict, writeDocSection, type Spread } from './support.ts';

export interface CrashSample {
  crash: number;
  pid: number;
  detectedMs: number;
  /** The state the actor went to first. */
  firstState: string;
  path: string[];
  expectedDelayMs: number;
  currentDelayMs: number;
  /** From entering backoff to entering starting (0 when it went straight to starting). */
  backoffMs: number;
  /** From the SIGKILL until the tunnel runs again (new pid, /ready answered). */
  downMs: number;
  newPid: number | null;
}

export interface CrashFigures {
  schedule: number[];
  samples: CrashSample[];
  detection: Spread;
  scheduleFollowed: boolean;
  pass: boolean;
}

const SCHEDULE_S = [1, 2, 4];

export async function runCrashBenchmark(options: { crashes?: number } = {}): Promise<CrashFigures> {
  const crashes = options.crashes ?? 5;
  const env = await startTestService({
    health: { probeIntervalSeconds: 30 },
    restart: { backoffSeconds: SCHEDULE_S, resetAfterSeconds: 600, startTimeoutSeconds: 20, stopGraceSeconds: 5 },
  });
  const tunnel = env.service.supervisor.actor.getSnapshot().children.tunnel as unknown as AnyActorRef;
  const snapshot = () => tunnel.getSnapshot() as { value: unknown; context: TunnelContext };
  const running = () => stateToString(snapshot().value).startsWith('running');
  try {
    await waitUntil(() => (running() && snapshot().context.process?.pid ? true : undefined), 60_000, 'the tunnel to run');
    const samples: CrashSample[] = [];
    for (let crash = 1; crash <= crashes; crash += 1) {
      await waitUntil(() => (running() && snapshot().context.process?.pid ? true : undefined), 60_000, 'the tunnel to run again');
      const pid = snapshot().context.process!.pid!;
      const path: string[] = [];
      const enteredAt: Record<string, number> = {};
      let left: { at: number; state: string; delay: number } | null = null;
      let killedAt = 0;
      const subscription = tunnel.subscribe((next) => {
        const state = stateToString((next as { value: unknown }).value);
        const top = state.split('.')[0]!;
        if (path[path.length - 1] !== top) {
          path.push(top);
          enteredAt[top] ??= performance.now();
        }
        if (left === null && killedAt > 0 && top !== 'running') {
          left = { at: performance.now(), state: top, delay: (next as { context: TunnelContext }).context.currentDelayMs };
        }
      });
      killedAt = performance.now();
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => (left !== null && running() && snapshot().context.process?.pid !== pid ? true : undefined), 60_000, `the tunnel to restart after crash ${crash}`);
      const backAt = performance.now();
      subscription.unsubscribe();
      const l = left as unknown as { at: number; state: string; delay: number };
      const streak = crash; // every crash lands within resetAfter of the previous start: one streak
      const expectedDelayMs = streak === 1 ? 0 : SCHEDULE_S[Math.min(streak - 2, SCHEDULE_S.length - 1)]! * 1000;
      samples.push({
        crash,
        pid,
        detectedMs: Math.round((l.at - killedAt) * 10) / 10,
        firstState: l.state,
        path,
        expectedDelayMs,
        currentDelayMs: l.delay,
        backoffMs: enteredAt.backoff !== undefined && enteredAt.starting !== undefined ? Math.round(enteredAt.starting - enteredAt.backoff) : 0,
        downMs: Math.round(backAt - killedAt),
        newPid: snapshot().context.process?.pid ?? null,
      });
    }
    const detection = spreadOf(samples.map((s) => s.detectedMs));
    // the wait must match the schedule: at least the delay, and not much more (timer + event loop slack)
    const scheduleFollowed = samples.every((s) => s.currentDelayMs === s.expectedDelayMs && s.backoffMs >= s.expectedDelayMs - 5 && s.backoffMs <= s.expectedDelayMs + 250);
    return { schedule: SCHEDULE_S, samples, detection, scheduleFollowed, pass: detection.max < 1000 && scheduleFollowed };
  } finally {
    await env.stop();
  }
}

export function renderCrash(f: CrashFigures): string {
  return [
    `Budget (docs/design.md, Budgets): crash of cloudflared detected < 1 s (process exit), restart on the backoff schedule. Result: ${verdict(f.pass)}.`,
    '',
    'Command: `node --import tsx test/bench/tunnel-crash.ts --write` (also `npm run bench`, `test/bench/tunnel-crash.bench.ts`).',
    '',
    'Scenario: the whole service in the benchmark process (`startTestService`, sandbox mode), the stand-in cloudflared a real process',
    `under the spawn driver. To keep the run short the backoff schedule is [${f.schedule.join(', ')}] s (default [5, 15, 30, 60, 300]: same machine, other`,
    'numbers) and `resetAfterSeconds` is 600, so the crashes form one streak. Each time the tunnel runs, its cloudflared is killed with',
    'SIGKILL (the pid the tunnel actor holds). Detection = from the SIGKILL to the tunnel actor\'s first snapshot outside `running`',
    '(the spawn driver watches its own child\'s `exit` event; an adopted process is polled every 250 ms instead). Backoff = time from',
    'entering `backoff` to entering `starting`. Down = from the SIGKILL until the tunnel runs again (new replica started and `/ready`).',
    '',
    '| crash | detected after, ms | actor path | expected wait, ms | `currentDelayMs` | waited in backoff, ms | down, ms |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...f.samples.map((s) => `| ${s.crash} | ${s.detectedMs} | ${s.path.join(' → ')} | ${s.expectedDelayMs} | ${s.currentDelayMs} | ${s.backoffMs} | ${s.downMs} |`),
    '',
    `Detection p50 / max: ${f.detection.p50} / ${f.detection.max} ms (budget < 1,000 ms: ${verdict(f.detection.max < 1000)}). Backoff schedule followed`,
    `(first crash of a streak restarts at once, then each wait is the next step of the schedule, to within 250 ms): ${verdict(f.scheduleFollowed)}.`,
    '',
    machineLine(),
    '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const at = process.argv.indexOf('--crashes');
  const figures = await runCrashBenchmark({ crashes: at === -1 ? 5 : Number(process.argv[at + 1]) });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  if (process.argv.includes('--write')) process.stdout.write(`wrote ${writeDocSection('Crash of cloudflared', renderCrash(figures))}\n`);
  process.exit(figures.pass ? 0 : 1);
}
