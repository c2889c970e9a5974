import { spawn } from 'node:child_process';

/**
 * Tells systemd about the service (Type=notify) through `systemd-notify`, when `NOTIFY_SOCKET` says systemd listens:
 * Node cannot send on a unix datagram socket, and a native module for four messages is not worth it. The unit sets
 * NotifyAccess=all, since the message comes from that child process. Without NOTIFY_SOCKET, nothing happens.
 */
export function sdNotify(fields: Record<string, string>, environment: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!environment.NOTIFY_SOCKET) return Promise.resolve();
  const assignments = Object.entries(fields).map(([key, value]) => `${key}=${value.replace(/\n/g, ' ')}`);
  return new Promise((resolve) => {
    const child = spawn('systemd-notify', [`--pid=${process.pid}`, ...assignments], { stdio: 'ignore', env: environment });
    child.once('error', () => resolve()); // no systemd-notify: nothing to tell
    child.once('exit', () => resolve());
  });
}
