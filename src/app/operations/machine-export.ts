import type { AnyStateMachine } from 'xstate';

/**
 * A machine's configuration as JSON that `createMachine()` takes back: the states, every transition (`on`, `always`,
 * `after`, invoke `onDone`/`onError`, state `onDone`), with actions, guards, delays and invoked actors by name.
 *
 * It is made from the raw config the machine was built from (`machine.config`, and each state node's `config`), not
 * from `toJSON()`, which is XState's internal form: that one cannot be loaded back and leaves out eventless
 * transitions. What is code stays code: an inline action or guard becomes a readable name (`xstate.assign@path`,
 * `not(dnsCreatedHere)`), and functions computing context, input, output or params are left out. Load the JSON with
 * implementations for those names (`createMachine(config, { actions, guards, actors, delays })`), or without any to
 * look at it in a visualizer.
 */
export function machineConfigOf(machine: AnyStateMachine): Record<string, unknown> {
  return exportNode(jsonOf(machine.config), [machine.id], true);
}

type Json = Record<string, unknown>;

/** Keys whose values are functions of the running machine, not part of its shape. */
const DROPPED_WHEN_FUNCTION = new Set(['context', 'input', 'output', 'params']);

/** Keys of a state node copied as they are (`context` too: a function was dropped before). */
const COPIED = new Set(['initial', 'type', 'history', 'target', 'description', 'tags', 'meta', 'version', 'context']);

function isFunction(value: unknown): value is ((...args: unknown[]) => unknown) & Record<string, unknown> {
  return typeof value === 'function';
}

function isJson(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function jsonOf(value: unknown): Json {
  return isJson(value) ? value : {};
}

/** An object with a string `type` (a named guard or action, maybe with params): its type and plain params. */
function typed(value: unknown): { type: string; params?: unknown } | null {
  if (!isJson(value) || typeof value.type !== 'string') return null;
  const params = value.params;
  return params === undefined || isFunction(params) ? { type: value.type } : { type: value.type, params };
}

/** A readable name for a guard: its own name, a combinator of names, or its place in the machine. */
function guardName(guard: unknown, where: string): string {
  if (typeof guard === 'string') return guard;
  if (isFunction(guard)) {
    const checkName = isFunction(guard.check) ? guard.check.name : undefined;
    const parts = guard.guards;
    if (checkName && Array.isArray(parts)) {
      const combinator = checkName.replace(/^check/, '').toLowerCase();
      return `${combinator}(${parts.map((part: unknown) => guardName(part, where)).join(', ')})`;
    }
    return `guard@${where}`;
  }
  return typed(guard)?.type ?? `guard@${where}`;
}

function exportGuard(guard: unknown, where: string): unknown {
  return typed(guard) ?? guardName(guard, where);
}

function exportAction(action: unknown, where: string): unknown {
  if (typeof action === 'string') return action;
  if (isFunction(action)) return `${typeof action.type === 'string' ? action.type : 'action'}@${where}`;
  return typed(action) ?? `action@${where}`;
}

function exportActions(actions: unknown, where: string): unknown {
  return Array.isArray(actions) ? actions.map((action, index) => exportAction(action, `${where}[${index}]`)) : exportAction(actions, where);
}

/** One transition, or a list of them: targets as written, guard and actions by name. */
function exportTransitions(transitions: unknown, where: string): unknown {
  if (Array.isArray(transitions)) return transitions.map((transition, index) => exportTransitions(transition, `${where}[${index}]`));
  if (typeof transitions === 'string' || transitions === undefined) return transitions;
  const out: Json = {};
  for (const [key, value] of Object.entries(jsonOf(transitions))) {
    if (key === 'guard') out.guard = exportGuard(value, where);
    else if (key === 'actions') out.actions = exportActions(value, `${where}.actions`);
    else if (key === 'target' || key === 'reenter' || key === 'description' || key === 'meta') out[key] = value;
  }
  return out;
}

function exportInvoke(invoke: unknown, where: string): unknown {
  if (Array.isArray(invoke)) return invoke.map((one, index) => exportInvoke(one, `${where}[${index}]`));
  const out: Json = {};
  for (const [key, value] of Object.entries(jsonOf(invoke))) {
    if (key === 'src') out.src = typeof value === 'string' ? value : `actor@${where}`;
    else if (key === 'onDone' || key === 'onError' || key === 'onSnapshot') out[key] = exportTransitions(value, `${where}.${key}`);
    else if (key === 'id' || key === 'systemId') out[key] = value;
    else if (!isFunction(value) && !DROPPED_WHEN_FUNCTION.has(key)) out[key] = value;
  }
  return out;
}

/** Each keyed map of transitions (`on`, `after`), exported entry by entry. */
function exportTransitionMap(value: unknown, where: string): Json {
  return Object.fromEntries(Object.entries(jsonOf(value)).map(([key, transitions]) => [key, exportTransitions(transitions, `${where}.${key}`)]));
}

/** How each key of a state node is exported; a key not here (types, output, other code) is not part of the shape. */
const NODE_KEYS: Record<string, (value: unknown, where: string, path: string[]) => unknown> = {
  states: (value, _where, path) => Object.fromEntries(Object.entries(jsonOf(value)).map(([name, child]) => [name, exportNode(jsonOf(child), [...path, name], false)])),
  on: (value, where) => exportTransitionMap(value, `${where}.on`),
  after: (value, where) => exportTransitionMap(value, `${where}.after`),
  always: (value, where) => exportTransitions(value, `${where}.always`),
  onDone: (value, where) => exportTransitions(value, `${where}.onDone`),
  entry: (value, where) => exportActions(value, `${where}.entry`),
  exit: (value, where) => exportActions(value, `${where}.exit`),
  invoke: (value, where) => exportInvoke(value, `${where}.invoke`),
};

function exportNode(config: Json, path: string[], isRoot: boolean): Json {
  const where = path.join('.');
  const out: Json = {};
  if (isRoot && typeof config.id === 'string') out.id = config.id;
  for (const [key, value] of Object.entries(config)) {
    if (isFunction(value) && DROPPED_WHEN_FUNCTION.has(key)) continue;
    const exporter = NODE_KEYS[key];
    if (key === 'id') {
      if (!isRoot) out.id = value;
    } else if (exporter) {
      out[key] = exporter(value, where, path);
    } else if (COPIED.has(key)) {
      out[key] = value;
    }
  }
  return out;
}
