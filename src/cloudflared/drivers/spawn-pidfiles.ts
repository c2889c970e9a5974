import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { readProcessArgv } from '../process-identity.ts';

/**
 * The spawn driver's two files: the pidfile, naming the live cloudflared (JSON: pid, argv, metrics address, start
 * time; a bare pid as cloudflared's own --pidfile writes is read too), and `<pidfile>.others`, listing the processes
 * it started that are not the live one (a reload's replica until promoted, the old one while it drains). Both are
 * written atomically (temporary file, then rename) and read as untrusted text: a record that does not parse is none.
 */
const PidfileRecordSchema = z.object({
  pid: z.number().int(),
  argv: z.array(z.string()),
  metricsAddress: z.string(),
  startedAt: z.number().default(0),
});

export type PidfileRecord = z.infer<typeof PidfileRecordSchema>;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function writeAtomically(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(value)}\n`, { mode: 0o644 });
  renameSync(temp, path);
}

export class SpawnPidfiles {
  /**
   * @param path the pidfile
   * @param addressOf the metrics address of a command line this configuration would run, for a bare-pid pidfile
   */
  constructor(
    readonly path: string,
    private readonly addressOf: (argv: readonly string[]) => string | undefined,
  ) {}

  private get othersPath(): string {
    return `${this.path}.others`;
  }

  /** The record the pidfile holds, or null when there is none or it does not parse. */
  read(): PidfileRecord | null {
    if (!existsSync(this.path)) return null;
    const text = readFileSync(this.path, 'utf8').trim();
    if (/^\d+$/.test(text)) return this.fromBarePid(Number(text));
    const parsed = PidfileRecordSchema.safeParse(parseJson(text));
    return parsed.success ? parsed.data : null;
  }

  /** A bare pid: the rest is recovered from /proc. */
  private fromBarePid(pid: number): PidfileRecord | null {
    const argv = readProcessArgv(pid);
    if (argv === null) return null;
    const metricsAddress = this.addressOf(argv);
    return metricsAddress === undefined ? null : { pid, argv, metricsAddress, startedAt: 0 };
  }

  write(record: PidfileRecord): void {
    writeAtomically(this.path, record);
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }

  /** Removes the pidfile when it names `pid` (or nothing readable). */
  clear(pid: number): void {
    const record = this.read();
    if (record === null || record.pid === pid) this.remove();
  }

  readOthers(): PidfileRecord[] {
    let text: string;
    try {
      text = readFileSync(this.othersPath, 'utf8');
    } catch {
      return [];
    }
    const parsed = z.array(z.unknown()).safeParse(parseJson(text));
    if (!parsed.success) return [];
    return parsed.data.flatMap((item) => {
      const record = PidfileRecordSchema.safeParse(item);
      return record.success ? [record.data] : [];
    });
  }

  writeOthers(records: PidfileRecord[]): void {
    if (records.length === 0) {
      rmSync(this.othersPath, { force: true });
      return;
    }
    writeAtomically(this.othersPath, records);
  }

  addOther(record: PidfileRecord): void {
    this.writeOthers([...this.readOthers().filter((other) => other.pid !== record.pid), record]);
  }

  removeOther(pid: number): void {
    const others = this.readOthers();
    if (others.some((other) => other.pid === pid)) this.writeOthers(others.filter((other) => other.pid !== pid));
  }
}
