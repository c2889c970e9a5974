import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { cloneState, type EmulatorState } from './emulator-state.ts';
import { isJsonObject } from '../../json-guards.ts';

/**
 * Holds the emulator's state in memory and, when given a path, in a JSON file: loaded at start
 * if it exists (else seeded), written atomically (temp file + rename) after every change.
 */
export class StateStore {
  private current: EmulatorState;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly seed: () => EmulatorState,
    private readonly path?: string,
  ) {
    this.current = path !== undefined && existsSync(path) ? readStateFile(path) : seed();
    this.persist();
  }

  /** The live state; handlers change it and then call `changed()`. */
  get state(): EmulatorState {
    return this.current;
  }

  snapshot(): EmulatorState {
    return cloneState(this.current);
  }

  changed(): void {
    this.persist();
    this.listeners.forEach((listener) => listener());
  }

  /** Calls `listener` after every change; returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Back to the seed (the file, if any, is overwritten). */
  reset(): void {
    this.current = this.seed();
    this.changed();
  }

  private persist(): void {
    if (this.path === undefined) return;
    mkdirSync(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(this.current, null, 2) + '\n', { mode: 0o600 });
    renameSync(temp, this.path);
  }
}

/**
 * The state file this emulator wrote: its shape is checked at the top (four lists), enough to refuse a file that is
 * not one, naming it; the entries are the emulator's own JSON.
 */
function readStateFile(path: string): EmulatorState {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (!isEmulatorState(parsed)) throw new Error(`${path} is not an emulator state file (it needs accounts, zones, records and tunnels lists).`);
  return parsed;
}

function isEmulatorState(value: unknown): value is EmulatorState {
  return (
    isJsonObject(value) &&
    Array.isArray(value.accounts) &&
    Array.isArray(value.zones) &&
    Array.isArray(value.records) &&
    Array.isArray(value.tunnels)
  );
}

/** A Cloudflare-style identifier: 32 lowercase hex digits. */
export function newIdentifier(): string {
  return randomBytes(16).toString('hex');
}

/** Cloudflare's timestamp format (microseconds, Z). */
export function cloudflareTimestamp(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
