import type { z } from 'zod';
import { TunnelManagerError, type ErrorShape } from '../errors.ts';
import type { Tool } from './tool-definition.ts';

/**
 * The refusals of arguments, before a tool's own schema reads them: not an object (a protocol error, -32602), a key
 * that would reach a prototype, and a schema failure worded with the fields to change.
 */

/** Keys that would reach an object's prototype rather than be an argument. */
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'];

/** Why `args` is not an arguments object, or null when it is one. */
function notAnArgumentsObject(args: unknown): string | null {
  if (args === undefined) return null;
  if (args === null) return 'null';
  if (Array.isArray(args)) return 'an array';
  if (typeof args !== 'object') return `a ${typeof args}`;
  return null;
}

/** Arguments that are not a JSON object: the shape of the -32602 answer, or null when they are one. */
export function notAnObjectError(tool: string, args: unknown): ErrorShape | null {
  const received = notAnArgumentsObject(args);
  if (received === null) return null;
  return {
    code: 'INPUT_INVALID',
    message: `The arguments of ${tool} must be a JSON object of named arguments; they were ${received}.`,
    fix: `Send "arguments": { ... } with the names tools/list shows for ${tool}, or {} when it takes none.`,
    details: { tool, received },
  };
}

/** A `__proto__`, `constructor` or `prototype` key, refused by name (never dropped or followed), or null. */
export function prototypeKeyError(tool: string, args: unknown): TunnelManagerError | null {
  if (typeof args !== 'object' || args === null) return null;
  const key = PROTOTYPE_KEYS.find((name) => Object.hasOwn(args, name));
  if (key === undefined) return null;
  return new TunnelManagerError({
    code: 'INPUT_INVALID',
    message: `Invalid arguments for ${tool}: ${key}: not an argument of this tool.`,
    fix: `Remove \`${key}\` and call ${tool} again; tools/list shows every argument with its form.`,
    details: { problems: [{ field: key, problem: 'not an argument of this tool' }], tool },
  });
}

interface Problem {
  field: string;
  problem: string;
  unknown: boolean;
}

function problemsOf(error: z.ZodError): Problem[] {
  return error.issues.flatMap((issue): Problem[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: [...issue.path, key].join('.'), problem: 'not an argument of this tool', unknown: true }))
      : [{ field: issue.path.join('.') || '(arguments)', problem: issue.message, unknown: false }],
  );
}

/** "Correct `a` and remove `b` (tool takes `x`, `y`) and call tool again; …", capitalised. */
function fixFor(tool: Tool, problems: Problem[]): string {
  const unknown = problems.filter((p) => p.unknown).map((p) => `\`${p.field}\``);
  const wrong = problems.filter((p) => !p.unknown).map((p) => `\`${p.field}\``);
  const accepted = tool.argumentNames.length > 0 ? tool.argumentNames.map((a) => `\`${a}\``).join(', ') : 'no arguments';
  const steps = [...(wrong.length > 0 ? [`correct ${wrong.join(', ')}`] : []), ...(unknown.length > 0 ? [`remove ${unknown.join(', ')} (${tool.name} takes ${accepted})`] : [])];
  const fix = `${steps.join(' and ')} and call ${tool.name} again; tools/list shows every argument with its form.`;
  return fix.charAt(0).toUpperCase() + fix.slice(1);
}

/**
 * Names the fields of a zod failure, so the caller knows exactly what to change. An unknown argument (the schemas are
 * strict) is named itself, with the arguments the tool takes: "Correct `(arguments)`" told nobody what to change.
 */
export function inputError(tool: Tool, error: z.ZodError, args: unknown): TunnelManagerError {
  const problems = problemsOf(error);
  return new TunnelManagerError({
    code: 'INPUT_INVALID',
    message: `Invalid arguments for ${tool.name}: ${problems.map((p) => `${p.field}: ${p.problem}`).join('; ')}.`,
    fix: fixFor(tool, problems),
    details: { problems: problems.map(({ field, problem }) => ({ field, problem })), received: typeof args === 'object' && args !== null ? Object.keys(args) : typeof args },
  });
}
