import type { z } from 'zod';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { McpBackend, Progress } from '../contract/backend.ts';
import type { Principal } from '../contract/principal.ts';

export interface ToolContext {
  principal: Principal;
  backend: McpBackend;
  /** Present when the caller sent a progressToken: each call sends one notifications/progress. */
  progress?: Progress;
  /** Aborted when the caller cancels the request (notifications/cancelled). */
  signal?: AbortSignal;
}

/**
 * One MCP tool: its schemas, annotations, who may call it and its handler, side by side.
 * `access: 'ms'` tools are refused (and audited) for project supervisors before the handler runs.
 */
export interface ToolDefinition<I extends z.ZodTypeAny = z.ZodTypeAny, O extends z.ZodTypeAny = z.ZodTypeAny> {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  annotations: ToolAnnotations;
  access: 'any' | 'ms';
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
