import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * Whether process `pid` itself holds the listening socket on `port`: something answering on a metrics address
 * proves nothing about who answers (another program may hold it), the kernel does. The LISTEN sockets of the
 * process's network namespace (`/proc/<pid>/net/tcp{,6}`, state 0A) give the socket inodes on that port; the
 * process owns one when `/proc/<pid>/fd/*` links to `socket:[inode]`.
 *
 * `null` when /proc cannot tell (another user's process without the right to read its descriptors, no /proc):
 * the caller then falls back to what it can check (the process is alive, its /ready answers).
 */
export async function pidListensOn(pid: number, port: number): Promise<boolean | null> {
  try {
    const inodes = await listeningInodes(`/proc/${pid}/net`, port);
    if (inodes.size === 0) return false;
    return (await socketInodesOf(pid)).some((inode) => inodes.has(inode));
  } catch {
    return null;
  }
}

/** The inodes of the LISTEN sockets on `port` in the network namespace whose tables are in `netDir`. */
async function listeningInodes(netDir: string, port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`${netDir}/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local === undefined || fields[3] !== '0A') continue;
      if (Number.parseInt(local.split(':')[1] ?? '', 16) === port && fields[9]) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** The socket inodes process `pid` holds (throws when its descriptors cannot be read). */
async function socketInodesOf(pid: number): Promise<string[]> {
  const inodes: string[] = [];
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined) inodes.push(inode);
  }
  return inodes;
}

/**
 * The processes of this machine's network namespace that hold a listening socket on `port`, with their command
 * lines: who is "another program" on an address. Empty when nobody listens, or when /proc does not say (a process
 * of another user whose descriptors this one may not read is left out).
 */
export async function listenersOn(port: number): Promise<{ pid: number; command: string }[]> {
  const inodes = await listeningInodes('/proc/self/net', port);
  if (inodes.size === 0) return [];
  const found: { pid: number; command: string }[] = [];
  for (const entry of await readdir('/proc').catch((): string[] => [])) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const held = await socketInodesOf(pid).catch((): string[] => []);
    if (!held.some((inode) => inodes.has(inode))) continue;
    const command = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
    found.push({ pid, command });
  }
  return found;
}
