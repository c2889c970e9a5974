import type { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';

type Schema = Record<string, unknown>;

/** Keys that describe a schema as a whole and stay beside an `anyOf` rather than inside a branch. */
const ANNOTATION_KEYS = new Set(['description', 'default', 'title', 'examples']);

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One key of a schema, made portable: `additionalProperties: {}` says `true`; properties and the rest are walked. */
function portableEntry(key: string, value: unknown): unknown {
  if (key === 'additionalProperties' && isSchema(value) && Object.keys(value).length === 0) return true;
  if (key === 'properties' && isSchema(value)) return Object.fromEntries(Object.entries(value).map(([name, property]) => [name, portable(property)]));
  return portable(value);
}

/** A schema of several types, `type: [T, "null"]`, as `anyOf` branches of one type each (annotations stay outside). */
function splitTypes(schema: Schema, types: unknown[]): Schema {
  const kept: Schema = {};
  const branch: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'type') continue;
    (ANNOTATION_KEYS.has(key) ? kept : branch)[key] = value;
  }
  return { ...kept, anyOf: types.map((single) => (single === 'null' ? { type: 'null' } : { type: single, ...branch })) };
}

/**
 * Rewrites a JSON Schema into the spelling most tool clients accept (the MCP Inspector's `--strict` portability
 * rules): a nullable `type: [T, "null"]` becomes `anyOf: [{ type: T, … }, { type: "null" }]`, and a free-form
 * `additionalProperties: {}` says `true` instead of an empty schema. Everything else is left as it is.
 */
export function portable(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(portable);
  if (!isSchema(schema)) return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) out[key] = portableEntry(key, value);
  const type = out.type;
  return Array.isArray(type) && type.length > 1 ? splitTypes(out, type) : out;
}

/** A zod schema as portable JSON Schema, without `$schema` (tools/list carries no dialect marker). */
export function jsonSchemaOf(schema: z.ZodTypeAny): Schema {
  const { $schema: _dialect, ...json } = zodToJsonSchema(schema, { target: 'jsonSchema7', $refStrategy: 'none' });
  const result = portable(json);
  if (!isSchema(result)) throw new Error('a zod schema became JSON Schema that is not an object');
  return result;
}
