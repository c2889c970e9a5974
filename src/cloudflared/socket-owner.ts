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
  const inodes = new Set<string>();
  try {
    for (const table of ['tcp', 'tcp6']) {
      const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        const local = fields[1];
        if (local === undefined || fields[3] !== '0A') continue;
        if (Number.parseInt(local.split(':')[1] ?? '', 16) === port && fields[9]) inodes.add(fields[9]);
      }
    }
    if (inodes.size === 0) return false;
    const descriptors = await readdir(`/proc/${pid}/fd`);
    for (const fd of descriptors) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) return true;
    }
    return false;
  } catch {
    return null;
  }
}
