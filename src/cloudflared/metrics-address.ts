import { connect } from 'node:net';
import { TunnelManagerError } from '../errors.ts';

/** Whether something accepts TCP connections at HOST:PORT (port 0 means "any free port": never taken). */
export async function isListening(address: string): Promise<boolean> {
  const index = address.lastIndexOf(':');
  const host = address.slice(0, index).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(index + 1));
  if (port === 0) return false;
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A fresh cloudflared must get its metrics address: if another program answers there, the probe would read
 * that program's /ready and take it for ours.
 */
export async function assertAddressFree(address: string): Promise<void> {
  const inUse = await isListening(address);
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  if (inUse) {
    throw new TunnelManagerError({
      code: 'TUNNEL_START_FAILED',
      message: `The metrics address ${address} is already in use by another program, so cloudflared could not serve /ready there and its health could not be told apart.`,
      fix: `Stop the program listening on ${address} (ss -ltnp 'sport = :${port}'), or set cloudflared.metricsAddress to a free HOST:PORT.`,
      details: { metricsAddress: address },
    });
  }
}
