import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';
import { startRounds } from './rounds.ts';

/**
 * Gives garbage back to the system while the service is idle.
 *
 * V8 collects when allocation asks for it, not when a process goes quiet. A boot with 1,000 routes (render,
 * validate, adopt, persist) leaves about 35 MB of garbage in a heap that then sees almost no allocation: left
 * alone, the manager sits at ~150 MB resident for hours while ~20 MB is live (ADR 0004 has the figures). So, every
 * 30 s, when the heap grew by 2 MB or more since the last collection, one full collection runs
 * (~10-20 ms for this heap; the CPU budget is 0.5 % of a core idle, this costs under 0.05 %).
 *
 * `gc` is not exposed without `--expose-gc` on Node's command line; setting the flag at run time and taking the
 * function from a fresh context is the documented V8 way to reach it without changing how the bin is started.
 *
 * The collection is V8's `last-resort` one (what it runs under memory pressure): besides the garbage, it gives back
 * the pages the heap grew into (new space, pooled pages). A regular full collection frees the objects but keeps the
 * pages: after a burst of large answers the heap stayed at 70 MB committed for 25 MB live, and the resident size
 * with it (docs/performance.md, Memory with use).
 */
export interface HeapTrimmer {
  /** Collects now (e.g. once boot is done); returns the MB given back to the heap. */
  collect(): number;
  stop(): void;
}

export interface HeapTrimOptions {
  /** Where a failed round is logged. */
  logger: Logger;
  /** The first collection, for what the boot left behind: default 10 s after the trimmer starts. */
  firstAfterMs?: number;
  /** How often to look, default 30 s. */
  intervalMs?: number;
  /** Collect when the heap grew this much since the last collection, default 2 MB (a last-resort collection of this heap takes tens of ms: at most one every 30 s). */
  growthBytes?: number;
}

/** V8's `gc` with options: `last-resort` is the collection V8 runs under memory pressure (CollectAllAvailableGarbage). */
type Gc = (options?: { type: 'major'; execution: 'sync'; flavor: 'regular' | 'last-resort' }) => void;

function isGc(value: unknown): value is Gc {
  return typeof value === 'function';
}

function exposeGc(): Gc {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (!isGc(gc)) throw new Error('V8 did not expose gc after --expose-gc: the heap trimmer cannot run on this Node');
  return gc;
}

export function startHeapTrimmer(options: HeapTrimOptions): HeapTrimmer {
  const gc = exposeGc();
  const growth = options.growthBytes ?? 2 * 1024 * 1024;
  let baseline = 0;
  const collect = (): number => {
    const before = getHeapStatistics().used_heap_size;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    baseline = getHeapStatistics().used_heap_size;
    return Math.max(0, before - baseline) / (1024 * 1024);
  };
  // The first round, 10 s in, collects what the boot left behind (the baseline starts at 0).
  const rounds = startRounds(
    () => {
      if (getHeapStatistics().used_heap_size - baseline > growth) collect();
    },
    { intervalMs: options.intervalMs ?? 30_000, firstAfterMs: options.firstAfterMs ?? 10_000, logger: options.logger, what: 'trimming the heap' },
  );
  return { collect, stop: rounds.stop };
}
