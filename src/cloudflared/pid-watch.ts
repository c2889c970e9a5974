/** Whether a pid names a live process (signal 0 probes without touching it; EPERM means it exists). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Polls a pid that is not our child (adopted, or left over from before a restart) and calls `onGone`
 * once when it disappears. Polling every 250 ms keeps detection well under a second.
 */
export function watchPid(pid: number, onGone: () => void, intervalMs = 250): () => void {
  let stopped = false;
  const timer = setInterval(() => {
    if (stopped || isPidAlive(pid)) return;
    stopped = true;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
