/**
 * cloudflared's `/ready` answer on its metrics address (`{"status":200,"readyConnections":4,"connectorId":"…"}`),
 * read from untrusted JSON: the count of ready connections, or null when the body does not say.
 */
export function readyConnectionsIn(body: unknown): number | null {
  if (typeof body !== 'object' || body === null || !('readyConnections' in body)) return null;
  return typeof body.readyConnections === 'number' ? body.readyConnections : null;
}
