import type { ChildProcess } from 'node:child_process';
import { TunnelManagerError } from '../../errors.ts';
import { errnoCodeOf, messageOf } from '../../thrown.ts';

/**
 * Resolves once the OS has started the process; a process that could not be started at all (no such file,
 * not executable) becomes TUNNEL_START_FAILED with the fix, for every driver that spawns cloudflared.
 */
export async function waitForSpawn(child: ChildProcess, command: string): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (error) {
    const errno = errnoCodeOf(error);
    throw new TunnelManagerError({
      code: 'TUNNEL_START_FAILED',
      message: `cloudflared could not be started: ${messageOf(error)}`,
      fix:
        errno === 'ENOENT'
          ? `Install cloudflared or correct cloudflared.command (now ${JSON.stringify(command)}); the path must exist and be executable.`
          : `Check that ${command} is executable by this user.`,
      details: { command, errno },
      cause: error,
    });
  }
}
