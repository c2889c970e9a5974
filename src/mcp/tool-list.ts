import type { Tool as ListedTool } from '@modelcontextprotocol/sdk/types.js';
import type { Principal } from '../contract/principal.ts';
import { mayCall } from './authorization.ts';
import { jsonSchemaOf } from './json-schema.ts';
import type { Tool } from './tool-definition.ts';

/**
 * The error shape every tool may answer with (`isError: true`), as JSON Schema. Each tool's outputSchema carries it
 * (`anyOf: [result, error]`): the SDK's client validates an error's structured content against the tool's own
 * schema, compiled alone, so a `$ref` to one shared definition could not resolve there. It is defined once, here.
 */
const ERROR_SCHEMA = {
  type: 'object',
  description: 'An error: a stable code, what happened, what to do next, and details.',
  properties: {
    code: { type: 'string', description: 'stable error code, e.g. PORT_NOT_OWNED; handle failures by it' },
    message: { type: 'string', description: 'what happened, in plain words' },
    fix: { type: 'string', description: 'what to do next, often the exact call to make' },
    details: { type: 'object', additionalProperties: true, description: 'what makes the failure concrete: the field, the owner, the networks…' },
  },
  required: ['code', 'message', 'fix', 'details'],
  additionalProperties: false,
};

/** The tools/list answers, built once per tool set and role: the schemas never change while the process runs. */
const toolLists = new WeakMap<readonly Tool[], Map<Principal['role'], ListedTool[]>>();

function buildToolList(tools: readonly Tool[]): ListedTool[] {
  return tools.map((tool) => ({
    name: tool.name,
    title: tool.title,
    description: tool.access === 'ms' ? `${tool.description} (meta-supervisor only)` : tool.description,
    inputSchema: { type: 'object', ...jsonSchemaOf(tool.input) },
    outputSchema: { type: 'object', anyOf: [jsonSchemaOf(tool.output), ERROR_SCHEMA] },
    annotations: tool.annotations,
  }));
}

/** What a role sees in tools/list: a project supervisor, only the tools it may call; the meta-supervisor, all. */
export function toolListOf(tools: readonly Tool[], role: Principal['role']): ListedTool[] {
  let byRole = toolLists.get(tools);
  if (!byRole) {
    byRole = new Map();
    toolLists.set(tools, byRole);
  }
  let list = byRole.get(role);
  if (!list) {
    list = buildToolList(tools.filter((tool) => mayCall(role, tool)));
    byRole.set(role, list);
  }
  return list;
}
