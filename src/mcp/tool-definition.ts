import type { z } from 'zod';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { McpBackend, Progress } from '../contract/backend.ts';
import type { EventRow } from '../store/events-repository.ts';
import type { Resource } from './authorization.ts';

/**
 * What a tool's handler gets besides its arguments: what the authorization policy decided (src/mcp/authorization.ts),
 * never the caller's identity. The handler decides nothing about who may act.
 */
export interface ToolContext {
  /** The project the call is for: the caller's own, the one the meta-supervisor named, or undefined for the meta-supervisor's reads of every project. */
  project: string | undefined;
  /** The project a change is made for (never undefined): `project`, or the caller's own for a read of every project. */
  actsFor: string;
  /** An event as the caller may read it (the policy's one rule, `eventFor`), or null when it may not. */
  seeEvent(event: EventRow): EventRow | null;
  backend: McpBackend;
  /** Present when the caller sent a progressToken: each call sends one notifications/progress. */
  progress?: Progress;
  /** Aborted when the caller cancels the request (notifications/cancelled). */
  signal?: AbortSignal;
}

/**
 * One MCP tool as written in its file: its schemas, annotations, who may call it, what it acts on and its handler,
 * side by side. `access` and `resource` are what the policy decides from, before the handler runs.
 */
export interface ToolSpec<I extends z.ZodTypeAny, O extends z.ZodTypeAny> {
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

/** A call whose arguments parsed: what it acts on, its audit target, and the work (answering the tool's output). */
export interface PreparedCall {
  resource: Resource;
  target: string | null;
  run(context: ToolContext): Promise<Record<string, unknown>>;
}

/** The arguments did not parse: zod's failure, to be worded for the caller. */
export interface RejectedCall {
  rejected: z.ZodError;
}

/**
 * A tool as the front end sees it, whatever its argument types: its published parts, and `prepare`, which parses
 * the arguments and binds them to the handler (the types stay inside, so no registry of tools needs a cast).
 */
export interface Tool {
  name: string;
  title: string;
  description: string;
  input: z.ZodTypeAny;
  output: z.ZodTypeAny;
  annotations: ToolAnnotations;
  access: 'any' | 'ms';
  secretArguments: readonly string[];
  /** The names of the arguments the tool takes (what an unknown-argument refusal lists). */
  argumentNames: readonly string[];
  prepare(args: unknown): PreparedCall | RejectedCall;
}

function argumentNamesOf(input: z.ZodTypeAny): string[] {
  const shape: unknown = 'shape' in input ? input.shape : undefined;
  return typeof shape === 'object' && shape !== null ? Object.keys(shape) : [];
}

/** An answer that is an object (every tool's output schema is one), or a clear failure. */
function asRecord(value: unknown, tool: string): Record<string, unknown> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return Object.fromEntries(Object.entries(value));
  throw new Error(`${tool} answered ${typeof value}, not an object: its output schema must describe an object.`);
}

export function defineTool<I extends z.ZodTypeAny, O extends z.ZodTypeAny>(spec: ToolSpec<I, O>): Tool {
  return {
    name: spec.name,
    title: spec.title,
    description: spec.description,
    input: spec.input,
    output: spec.output,
    annotations: spec.annotations,
    access: spec.access,
    secretArguments: spec.secretArguments ?? [],
    argumentNames: argumentNamesOf(spec.input),
    prepare(args) {
      const parsed = spec.input.safeParse(args);
      if (!parsed.success) return { rejected: parsed.error };
      const data: z.output<I> = parsed.data;
      return {
        resource: spec.resource?.(data) ?? { kind: 'shared' },
        target: spec.auditTarget?.(data) ?? null,
        run: async (context) => asRecord(spec.output.parse(await spec.handler(data, context)), spec.name),
      };
    },
  };
}
