import { describe, expect, it } from 'vitest';
import { jsonSchemaOf } from '../../../src/mcp/json-schema.ts';
import { ALL_TOOLS } from '../../../src/mcp/tools/index.ts';

/**
 * The tool list is an agent's manual: every argument says what it is, fixed sets are enums, and the schemas use
 * the spelling every client takes (the MCP Inspector's --strict portability rules), so nothing is lost on the way.
 */

type Schema = Record<string, unknown>;

/** Every (path, schema) pair in a JSON Schema, depth first. */
function* nodes(schema: unknown, path: string): Generator<[string, Schema]> {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return;
  const node = schema as Schema;
  yield [path, node];
  for (const [name, property] of Object.entries((node.properties ?? {}) as Record<string, unknown>)) yield* nodes(property, `${path}.${name}`);
  if (node.items !== undefined) yield* nodes(node.items, `${path}[]`);
  if (typeof node.additionalProperties === 'object') yield* nodes(node.additionalProperties, `${path}{}`);
  for (const [index, branch] of ((node.anyOf ?? []) as unknown[]).entries()) yield* nodes(branch, `${path}|${index}`);
}

const schemas = ALL_TOOLS.map((tool) => ({ tool: tool.name, input: jsonSchemaOf(tool.input), output: jsonSchemaOf(tool.output) }));

describe('tool schemas', () => {
  /** Properties, anywhere in the given schemas, whose description is missing or too short to say anything. */
  function undescribed(which: 'input' | 'output', minLength: number): string[] {
    const missing: string[] = [];
    for (const schema of schemas) {
      for (const [path, node] of nodes(schema[which], schema.tool)) {
        for (const [name, property] of Object.entries((node.properties ?? {}) as Record<string, Schema>)) {
          if (typeof property.description !== 'string' || property.description.length < minLength) missing.push(`${path}.${name}`);
        }
      }
    }
    return missing;
  }

  it('every argument of every tool has a description', () => {
    expect(undescribed('input', 10)).toEqual([]);
  });

  it('every field of every answer has a description', () => {
    expect(undescribed('output', 5)).toEqual([]);
  });

  it('use the portable spelling: one type per schema, no schema that says nothing', () => {
    const problems: string[] = [];
    for (const { tool, input, output } of schemas) {
      for (const [path, node] of [...nodes(input, `${tool}.input`), ...nodes(output, `${tool}.output`)]) {
        if (Array.isArray(node.type)) problems.push(`${path}: type ${JSON.stringify(node.type)}`);
        if (Object.keys(node).length === 0) problems.push(`${path}: empty schema`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('outputs validate strictly: every object says whether it takes other keys', () => {
    const open: string[] = [];
    for (const { tool, output } of schemas) {
      for (const [path, node] of nodes(output, tool)) if (node.type === 'object' && node.properties !== undefined && node.additionalProperties !== false) open.push(path);
    }
    expect(open).toEqual([]);
  });

  it('values from a fixed set are enums', () => {
    const at = (tool: string, path: string[]): Schema => {
      let node: Schema = schemas.find((s) => s.tool === tool)!.output;
      for (const step of path) node = step === '[]' ? (node.items as Schema) : ((node.properties as Record<string, Schema>)[step] as Schema);
      return node;
    };
    expect(at('tunnel_get_status', ['state']).enum).toEqual(expect.arrayContaining(['running.up', 'running.degraded', 'backoff', 'stopped', 'unknown']));
    expect(at('tunnel_get_metrics', ['state']).enum).toEqual(at('tunnel_get_status', ['state']).enum);
    expect(at('tunnel_list_cnames', ['routes', '[]', 'status']).enum).toEqual(['pending', 'active', 'deleting', 'failed', 'adopted']);
    expect(at('tunnel_list_cnames', ['routes', '[]', 'source']).enum).toEqual(['request', 'adopted']);
    expect(at('tunnel_get_audit', ['entries', '[]', 'outcome']).enum).toEqual(['ok', 'denied', 'error']);
  });
});
