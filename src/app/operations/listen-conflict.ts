import { environmentErrorShape, TunnelManagerError } from '../../errors.ts';

/** The addresses `serve` listens on, as the command line and the configuration gave them (HOST:PORT). */
export interface ServeListeners {
  mcp: string;
  /** The sandbox's local edge, when `serve` runs the sandbox. */
  edge: string | null;
  /** The manager's metrics and health listener (`metrics.listen`), or null when off. */
  metrics: string | null;
}

const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));

/**
 * `serve` failing because an address it listens on is taken: ADDRESS_IN_USE naming which of its listeners it is and
 * the option that moves it (`--listen`, `--edge-listen`, or `metrics.listen`), port 0 included. Null when `error` is
 * no such failure.
 */
export function addressInUse(error: unknown, listeners: ServeListeners): TunnelManagerError | null {
  const shape = environmentErrorShape(error);
  if (shape?.code !== 'ADDRESS_IN_USE') return null;
  const port = typeof error === 'object' && error !== null && 'port' in error && typeof error.port === 'number' ? error.port : undefined;
  const taken = String(shape.details.address ?? `port ${port ?? '?'}`);
  const which = (address: string | null): boolean => address !== null && port !== undefined && portOf(address) === port;
  const find = `\`ss -ltnp 'sport = :${port ?? 'PORT'}'\` shows who holds it (another tunnel-manager, perhaps: \`tunnel-manager status --data-dir DIR\`)`;
  const both = '`--listen 127.0.0.1:0 --edge-listen 127.0.0.1:0` picks free ports for both (the sandbox prints them and writes them to sandbox.json)';
  let message: string;
  let fix: string;
  if (which(listeners.mcp)) {
    message = `Cannot serve MCP on ${taken}: another program already listens there.`;
    fix = `Stop it, or give this one another address: \`--listen HOST:PORT\` (mcp.listen); ${listeners.edge === null ? '`--listen 127.0.0.1:0` picks a free port' : both}. ${find}.`;
  } else if (which(listeners.edge)) {
    message = `Cannot start the sandbox's edge on ${taken}: another program already listens there.`;
    fix = `Stop it, or give this one another address: \`--edge-listen HOST:PORT\`; ${both}. ${find}.`;
  } else if (which(listeners.metrics)) {
    message = `Cannot serve metrics and health checks on ${taken}: another program already listens there.`;
    fix = `Stop it, or set metrics.listen in the configuration (--config) to another address (port 0 picks a free one) or to off. ${find}.`;
  } else {
    return new TunnelManagerError({ ...shape, cause: error });
  }
  return new TunnelManagerError({ code: 'ADDRESS_IN_USE', message, fix, details: { ...shape.details, listeners }, cause: error });
}
