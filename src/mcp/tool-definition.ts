import type { z } from 'zod';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { McpBackend, Progress } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';
import type { Resource } from './authorization.ts';

export interface ToolContext {
  principal: Principal;
  /**
   * The project the call is for, as the authorization policy decided it (src/mcp/authorization.ts): the caller's own,
   * the one the meta-supervisor named, or undefined for the meta-supervisor's reads of every project.
   */
  project: string | undefined;
  backend: McpBackend;
  /** Present when the caller sent a progressToken: each call sends one notifications/progress. */
  progress?: Progress;
  /** Aborted when the caller cancels the request (notifications/cancelled). */
  signal?: AbortSignal;
}

/**
 * One MCP tool: its schemas, annotations, who may call it, what it acts on and its handler, side by side.
 * The handler decides nothing about who may act: `access` and `resource` are what the authorization policy
 * (src/mcp/authorization.ts) decides from, before the handler runs, and a refusal is audited.
 */
export interface ToolDefinition<I extends z.ZodTypeAny = z.ZodTypeAny, O extends z.ZodTypeAny = z.ZodTypeAny> {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  annotations: ToolAnnotations;
  /** `ms`: the meta-supervisor's alone (refused to project supervisors, left out of their tools/list). */
  access: 'any' | 'ms';
  /** What the call acts on, from its arguments; default: nothing of a project's (`shared`). */
  resource?: (args: z.output<I>) => Resource;
  /** Argument names whose values never reach the audit log. */
  secretArguments?: string[];
  /** The audit row's `target` (hostname, port…), from the arguments. */
  auditTarget?: (args: z.output<I>) => string | null;
  handler: (args: z.output<I>, context: ToolContext) => Promise<z.input<O>> | z.input<O>;
}

export function defineTool<I extends z.ZodTypeAny, O extends z.ZodTypeAny>(definition: ToolDefinition<I, O>): ToolDefinition<I, O> {
  return definition;
}

export type AnyToolDefinition = ToolDefinition<z.ZodTypeAny, z.ZodTypeAny>;
