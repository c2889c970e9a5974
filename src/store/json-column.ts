import { z } from 'zod';

/**
 * Readers for the JSON the store wrote into a TEXT column: each checks the shape it expects instead of trusting it,
 * so a row edited by hand fails here, naming what it holds, rather than somewhere far from the database.
 */
const objectSchema = z.record(z.unknown());
const stringRecordSchema = z.record(z.string());
const stringListSchema = z.array(z.string());

/** A JSON object column (`arguments`, `details`, `data`, `origin_request`). */
export function jsonObject(text: string): Record<string, unknown> {
  return objectSchema.parse(JSON.parse(text));
}

/** A JSON object of strings (Docker labels). */
export function jsonStringRecord(text: string): Record<string, string> {
  return stringRecordSchema.parse(JSON.parse(text));
}

/** A JSON list of strings (aliases, extra hosts). */
export function jsonStringList(text: string): string[] {
  return stringListSchema.parse(JSON.parse(text));
}

/** A JSON value whose shape its reader checks (an actor snapshot: XState restores and checks it). */
export function jsonValue(text: string): unknown {
  return JSON.parse(text);
}
