/**
 * Readers for the JSON the store wrote into a TEXT column: each checks the shape it expects instead of trusting it,
 * so a row edited by hand fails here, saying what it holds, rather than somewhere far from the database. The checks
 * read the parsed value in place (no copy): they run on every row a list reads.
 */
import { isJsonObject } from '../json-guards.ts';

function parseChecked<T>(text: string, check: (value: unknown) => value is T, expected: string): T {
  const value: unknown = JSON.parse(text);
  if (!check(value)) throw new Error(`A JSON column holds ${text.slice(0, 80)}, not ${expected}.`);
  return value;
}

const isStringRecord = (value: unknown): value is Record<string, string> =>
  isJsonObject(value) && Object.values(value).every((item) => typeof item === 'string');

const isStringList = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** A JSON object column (`arguments`, `details`, `data`, `origin_request`). */
export function jsonObject(text: string): Record<string, unknown> {
  return parseChecked(text, isJsonObject, 'an object');
}

/** A JSON object of strings (Docker labels). */
export function jsonStringRecord(text: string): Record<string, string> {
  return parseChecked(text, isStringRecord, 'an object of strings');
}

/** A JSON list of strings (aliases, extra hosts). */
export function jsonStringList(text: string): string[] {
  return parseChecked(text, isStringList, 'a list of strings');
}

/** A JSON value whose reader checks its shape (an actor snapshot: XState restores it, the machine's version guards it). */
export function jsonValue(text: string): unknown {
  const value: unknown = JSON.parse(text);
  return value;
}
