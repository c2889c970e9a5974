/**
 * On which address a containerised service really listens, read from the kernel instead of asked of the caller.
 *
 * A service bound to 127.0.0.1 inside its container answers nobody else: not cloudflared on a shared network, not
 * Docker's port forwarding. The manager runs on the host, so it can read the container's network namespace through
 * its main process: `/proc/<pid>/net/tcp` and `tcp6` list that namespace's sockets, LISTEN ones with state 0A.
 * Nothing runs inside the container (no `docker exec`, no tools needed in its image).
 *
 * When /proc cannot be read (the manager itself in a container with its own PID namespace, no permission), the
 * answer is `unknown` and target selection goes on as before.
 */
import { open } from 'node:fs/promises';
import type Dockerode from 'dockerode';

export type ListenDetection =
  /** Listening on every address of its network namespace (0.0.0.0 or ::). */
  | { kind: 'all'; evidence: string }
  /** Listening only on these addresses (loopback first when it is one of them). */
  | { kind: 'only'; address: string; evidence: string }
  /** Nothing listens on that port (yet). */
  | { kind: 'not-listening'; evidence: string }
  | { kind: 'unknown'; evidence: string };

const LISTEN = '0A';

/** The LISTEN sockets of a `/proc/net/tcp` (`family` 4) or `/proc/net/tcp6` (`family` 6) table. */
export function parseProcNetTcp(text: string, family: 4 | 6): { address: string; port: number }[] {
  const sockets: { address: string; port: number }[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    if (local === undefined || fields[3] !== LISTEN) continue;
    const [hexAddress = '', hexPort = ''] = local.split(':');
    const address = family === 4 ? ipv4FromProc(hexAddress) : ipv6FromProc(hexAddress);
    const port = Number.parseInt(hexPort, 16);
    if (address !== null && Number.isInteger(port)) sockets.push({ address, port });
  }
  return sockets;
}

/** Socket states that the kernel lists in a table's listening part: LISTEN, and SYN_RECV on kernels before 4.4. */
const LISTENING_PART = new Set([LISTEN, '03']);

/**
 * The listening part of a `/proc/<pid>/net/tcp{,6}` table (header included). The kernel lists the listening sockets
 * first and every other socket (established, TIME_WAIT, …) after them, and each read of the whole table walks all of
 * them: 4 ms here with 800 TIME_WAIT sockets, more on a busy host. Reading stops at the first socket of the second
 * part, so the cost follows the number of listeners instead.
 */
export async function readListeningPart(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(16 * 1024);
    let text = '';
    let checked = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return text;
      text += buffer.toString('latin1', 0, bytesRead);
      const complete = text.lastIndexOf('\n') + 1;
      while (checked < complete) {
        const next = text.indexOf('\n', checked) + 1;
        const fields = text.slice(checked, next).trim().split(/\s+/);
        // Data lines start with their slot number ("12:"); the header does not.
        if (/^\d+:$/.test(fields[0] ?? '') && !LISTENING_PART.has(fields[3] ?? '')) return text.slice(0, checked);
        checked = next;
      }
    }
  } finally {
    await handle.close();
  }
}

/** The kernel prints each 32-bit word in host byte order (little-endian on the machines we run on). */
function wordBytes(hex8: string): number[] {
  const bytes = [0, 2, 4, 6].map((i) => Number.parseInt(hex8.slice(i, i + 2), 16));
  return bytes.reverse();
}

function ipv4FromProc(hex: string): string | null {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return null;
  return wordBytes(hex).join('.');
}

function ipv6FromProc(hex: string): string | null {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return null;
  const bytes = [0, 8, 16, 24].flatMap((i) => wordBytes(hex.slice(i, i + 8)));
  // An IPv4-mapped address (::ffff:a.b.c.d) is an IPv4 listener.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return compressIpv6(groups);
}

/** The canonical (compressed) text of an IPv6 address, as the WHATWG URL parser writes it. */
function compressIpv6(groups: string[]): string {
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

const isWildcard = (address: string) => address === '0.0.0.0' || address === '::';
const isLoopback = (address: string) => address.startsWith('127.') || address === '::1';

/** What a list of listening addresses for one port means. */
export function classifyListeners(addresses: readonly string[], where: string): ListenDetection {
  const unique = [...new Set(addresses)].sort((a, b) => Number(isLoopback(b)) - Number(isLoopback(a)) || (a < b ? -1 : a > b ? 1 : 0));
  const [first] = unique;
  if (first === undefined) return { kind: 'not-listening', evidence: `nothing listens on that port in ${where}` };
  if (unique.some(isWildcard)) return { kind: 'all', evidence: `${where} listens on ${unique.join(', ')}` };
  return { kind: 'only', address: first, evidence: `${where} listens on ${unique.join(', ')} only` };
}

/**
 * The addresses with a LISTEN socket on `port` in the network namespace of process `pid` (every process of that
 * namespace, not only `pid`; `self` is the manager's own namespace, the host's when it runs on the host); null when
 * /proc cannot be read.
 */
export async function listenersOf(pid: number | 'self', port: number, read: (path: string) => Promise<string> = readListeningPart): Promise<string[] | null> {
  const tables = await Promise.all(
    ([4, 6] as const).map(async (family) => {
      try {
        return parseProcNetTcp(await read(`/proc/${pid}/net/${family === 4 ? 'tcp' : 'tcp6'}`), family);
      } catch {
        return null;
      }
    }),
  );
  if (tables.every((table) => table === null)) return null;
  // One address can appear twice (SO_REUSEPORT listeners): the addresses are what matters.
  return [...new Set(tables.flatMap((table) => table ?? []).filter((socket) => socket.port === port).map((socket) => socket.address))].sort();
}

/** On which address the service on `port` inside `container` listens (see the module comment). */
export async function detectListenAddress(docker: Dockerode, container: string, port: number): Promise<ListenDetection> {
  let pid: number;
  try {
    pid = (await docker.getContainer(container).inspect()).State?.Pid ?? 0;
  } catch (error) {
    return { kind: 'unknown', evidence: `could not inspect ${container}: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!pid) return { kind: 'unknown', evidence: `${container} has no running process` };
  const addresses = await listenersOf(pid, port);
  if (addresses === null) return { kind: 'unknown', evidence: `/proc/${pid}/net is not readable from here` };
  return classifyListeners(addresses, `container ${container} (port ${port}, read from /proc/${pid}/net)`);
}
