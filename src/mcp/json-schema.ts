import type { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';

type Schema = Record<string, unknown>;

/** Keys that describe a schema as a whole and stay beside an `anyOf` rather than inside a branch. */
const ANNOTATION_KEYS = new Set(['description', 'default', 'title', 'examples']);

/**
 * Rewrites a JSON Schema into the spelling most tool clients accept (the MCP Inspector's `--strict` portability
 * rules): a nullable `type: [T, "null"]` becomes `anyOf: [{ type: T, … }, { type: "null" }]`, and a free-form
 * `additionalProperties: {}` says `true` instead of an empty schema. Everything else is left as it is.
 */
export function portable(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(portable);
  if (schema === null || typeof schema !== 'object') return schema;
  const input = schema as Schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(input)) {
    if (key === 'additionalProperties' && value !== null && typeof value === 'object' && Object.keys(value).length === 0) out[key] = true;
    else if (key === 'properties' && value !== null && typeof value === 'object') {
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([name, property]) => [name, portable(property)]));
    } else out[key] = portable(value);
  }
  const type = out.type;
  if (Array.isArray(type) && type.length > 1) {
    const kept: Schema = {};
    const branch: Schema = {};
    for (const [key, value] of Object.entries(out)) {
      if (key === 'type') continue;
      (ANNOTATION_KEYS.has(key) ? kept : branch)[key] = value;
    }
    return { ...kept, anyOf: type.map((single) => (single === 'null' ? { type: 'null' } : { type: single, ...branch })) };
  }
  return out;
}

/** A zod schema as portable JSON Schema, without `$schema` (tools/list carries no dialect marker). */
export function jsonSchemaOf(schema: z.ZodTypeAny): Schema {
  const json = zodToJsonSchema(schema, { target: 'jsonSchema7', $refStrategy: 'none' }) as Schema;
  delete json.$schema;
  return portable(json) as Schema;
}
