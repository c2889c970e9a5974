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
  return exportNode(machine.config as Record<string, unknown>, [machine.id], true);
}

type Json = Record<string, unknown>;

/** Keys whose values are functions of the running machine, not part of its shape. */
const DROPPED_WHEN_FUNCTION = new Set(['context', 'input', 'output', 'params']);

function isFunction(value: unknown): value is ((...args: unknown[]) => unknown) & Record<string, unknown> {
  return typeof value === 'function';
}

/** A readable name for a guard: its own name, a combinator of names, or its place in the machine. */
function guardName(guard: unknown, where: string): string {
  if (typeof guard === 'string') return guard;
  if (isFunction(guard)) {
    const check = guard.check as { name?: string } | undefined;
    const parts = guard.guards as unknown[] | undefined;
    if (check?.name && Array.isArray(parts)) {
      const combinator = check.name.replace(/^check/, '').toLowerCase();
      return `${combinator}(${parts.map((part) => guardName(part, where)).join(', ')})`;
    }
    return `guard@${where}`;
  }
  if (guard !== null && typeof guard === 'object' && typeof (guard as Json).type === 'string') return (guard as Json).type as string;
  return `guard@${where}`;
}

function exportGuard(guard: unknown, where: string): unknown {
  if (guard !== null && typeof guard === 'object' && typeof (guard as Json).type === 'string') {
    const params = (guard as Json).params;
    return params === undefined || isFunction(params) ? { type: (guard as Json).type } : { type: (guard as Json).type, params };
  }
  return guardName(guard, where);
}

function exportAction(action: unknown, where: string): unknown {
  if (typeof action === 'string') return action;
  if (isFunction(action)) return `${typeof action.type === 'string' ? action.type : 'action'}@${where}`;
  if (action !== null && typeof action === 'object' && typeof (action as Json).type === 'string') {
    const params = (action as Json).params;
    return params === undefined || isFunction(params) ? { type: (action as Json).type } : { type: (action as Json).type, params };
  }
  return `action@${where}`;
}

function exportActions(actions: unknown, where: string): unknown {
  return Array.isArray(actions) ? actions.map((action, index) => exportAction(action, `${where}[${index}]`)) : exportAction(actions, where);
}

/** One transition, or a list of them: targets as written, guard and actions by name. */
function exportTransitions(transitions: unknown, where: string): unknown {
  if (Array.isArray(transitions)) return transitions.map((transition, index) => exportTransitions(transition, `${where}[${index}]`));
  if (typeof transitions === 'string' || transitions === undefined) return transitions;
  const transition = transitions as Json;
  const out: Json = {};
  for (const [key, value] of Object.entries(transition)) {
    if (key === 'guard') out.guard = exportGuard(value, where);
    else if (key === 'actions') out.actions = exportActions(value, `${where}.actions`);
    else if (key === 'target' || key === 'reenter' || key === 'description' || key === 'meta') out[key] = value;
  }
  return out;
}

function exportInvoke(invoke: unknown, where: string): unknown {
  if (Array.isArray(invoke)) return invoke.map((one, index) => exportInvoke(one, `${where}[${index}]`));
  const definition = invoke as Json;
  const out: Json = {};
  for (const [key, value] of Object.entries(definition)) {
    if (key === 'src') out.src = typeof value === 'string' ? value : `actor@${where}`;
    else if (key === 'onDone' || key === 'onError' || key === 'onSnapshot') out[key] = exportTransitions(value, `${where}.${key}`);
    else if (key === 'id' || key === 'systemId') out[key] = value;
    else if (!isFunction(value) && !DROPPED_WHEN_FUNCTION.has(key)) out[key] = value;
  }
  return out;
}

function exportNode(config: Json, path: string[], isRoot: boolean): Json {
  const where = path.join('.');
  const out: Json = {};
  if (isRoot && typeof config.id === 'string') out.id = config.id;
  for (const [key, value] of Object.entries(config)) {
    if (isFunction(value) && DROPPED_WHEN_FUNCTION.has(key)) continue;
    switch (key) {
      case 'id':
        if (!isRoot) out.id = value;
        break;
      case 'states':
        out.states = Object.fromEntries(Object.entries(value as Record<string, Json>).map(([name, child]) => [name, exportNode(child, [...path, name], false)]));
        break;
      case 'on':
        out.on = Object.fromEntries(Object.entries(value as Json).map(([event, transitions]) => [event, exportTransitions(transitions, `${where}.on.${event}`)]));
        break;
      case 'after':
        out.after = Object.fromEntries(Object.entries(value as Json).map(([delay, transitions]) => [delay, exportTransitions(transitions, `${where}.after.${delay}`)]));
        break;
      case 'always':
      case 'onDone':
        out[key] = exportTransitions(value, `${where}.${key}`);
        break;
      case 'entry':
      case 'exit':
        out[key] = exportActions(value, `${where}.${key}`);
        break;
      case 'invoke':
        out.invoke = exportInvoke(value, `${where}.invoke`);
        break;
      case 'initial':
      case 'type':
      case 'history':
      case 'target':
      case 'description':
      case 'tags':
      case 'meta':
      case 'version':
        out[key] = value;
        break;
      case 'context':
        out.context = value; // a function was skipped above; a plain object stays
        break;
      default:
        break; // types, output and other code-only keys are not part of the shape
    }
  }
  return out;
}
