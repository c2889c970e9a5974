/** `HOST:PORT` (an IPv6 host in brackets) split in two; a clear error when it is not one. */
export function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) throw new Error(`${JSON.stringify(address)} is not a HOST:PORT address (expected e.g. 127.0.0.1:20241)`);
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${JSON.stringify(address)} does not end in a port from 0 to 65535`);
  }
  return { host, port };
}
