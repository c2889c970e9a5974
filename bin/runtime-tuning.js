// How `tunnel-manager serve` runs Node: V8 flags and glibc malloc settings that keep a long-running manager small.
// They only take effect at process start, so the bin re-executes itself with them (process.execve: same pid, so
// systemd's MainPID, the pidfile and sd_notify are unchanged) wherever serve is started: `npm start`, the systemd
// unit, the image, a person's shell. Measured in docs/performance.md (Memory with use at 1,000 routes), where each
// one is explained. TUNNEL_MANAGER_RUNTIME_TUNING=off starts serve without them (to measure the difference).

/** V8 flags for serve. */
export const SERVE_NODE_FLAGS = [
  // The young generation grows to 64 MB per semi-space on Node 24 under allocation, and stays committed.
  '--max-semi-space-size=2',
  // Smaller heap growth steps and denser objects: collections come before the heap balloons.
  '--optimize-for-size',
  // No optimizing compilers (Maglev, TurboFan): their code and compile zones cost 8-10 MB resident; the interpreter and
  // the baseline compiler serve an I/O-bound manager.
  '--max-opt=1',
  // WebAssembly (undici's HTTP parser, under fetch) compiled by the baseline compiler only.
  '--liftoff-only',
];

/** glibc malloc: two arenas instead of one per thread, and freed memory given back instead of kept. */
export const SERVE_MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072', MALLOC_MMAP_THRESHOLD_: '131072' };

/**
 * Re-executes this process with the flags when it runs `serve` without them; returns only when nothing is to be done
 * (another command, already tuned, tuning off, or a Node without process.execve).
 */
export function tuneServeRuntime(args) {
  if (args[0] !== 'serve' || process.env.TUNNEL_MANAGER_RUNTIME_TUNING === 'off') return;
  if (SERVE_NODE_FLAGS.every((flag) => process.execArgv.includes(flag))) return;
  if (typeof process.execve !== 'function') return;
  process.execve(process.execPath, [process.execPath, ...SERVE_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, ...SERVE_MALLOC_ENV });
}
