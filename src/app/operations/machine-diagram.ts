import type { AnyStateMachine } from 'xstate';
import { z } from 'zod';

/**
 * Mermaid state diagrams from a machine's own definition (`machine.toJSON()`), so the pictures in
 * docs/machines.md can never drift from the code: a test regenerates them and compares.
 */

/** A transition as `toJSON()` gives it (after a JSON round trip); what the diagram does not draw passes through. */
const TransitionJson = z
  .object({
    target: z.array(z.string()).optional(),
    eventType: z.string().nullable(),
    guard: z.union([z.string(), z.object({ type: z.string().optional() }).passthrough()]).optional(),
    delay: z.union([z.string(), z.number()]).optional(),
    reenter: z.boolean().optional(),
  })
  .passthrough();
type TransitionJson = z.infer<typeof TransitionJson>;

interface StateJson {
  id: string;
  key: string;
  initial?: { target?: string[] | undefined } | undefined;
  states: Record<string, StateJson>;
  transitions: TransitionJson[];
  invoke: { src: string }[];
}

const StateJson: z.ZodType<StateJson, z.ZodTypeDef, unknown> = z.lazy(() =>
  z
    .object({
      id: z.string(),
      key: z.string(),
      initial: z.object({ target: z.array(z.string()).optional() }).passthrough().optional(),
      states: z.record(StateJson),
      transitions: z.array(TransitionJson),
      invoke: z.array(z.object({ src: z.string() }).passthrough()),
    })
    .passthrough(),
);

function nodeName(id: string): string {
  return id.replace(/^#/, '').replace(/[^A-Za-z0-9]/g, '_');
}

function label(transition: TransitionJson): string {
  const event = transition.eventType ?? '';
  let text: string;
  if (event === '') text = 'always';
  else if (event.startsWith('xstate.done.actor.')) text = `${event.slice('xstate.done.actor.'.length)} done`;
  else if (event.startsWith('xstate.error.actor.')) text = `${event.slice('xstate.error.actor.'.length)} failed`;
  else if (event.startsWith('xstate.after.')) text = `after ${String(transition.delay ?? event.split('.')[2])}`;
  else text = event;
  const guard = typeof transition.guard === 'string' ? transition.guard : transition.guard?.type;
  return guard ? `${text} [${guard}]` : text;
}

/** A state's children, its initial state first, each drawn inside it. */
function renderChildren(state: StateJson, indent: string, lines: string[], isRoot: boolean): void {
  const inner = isRoot ? indent : `${indent}  `;
  const initial = state.initial?.target?.[0];
  if (initial) lines.push(`${inner}[*] --> ${nodeName(initial)}`);
  for (const child of Object.values(state.states)) renderState(child, inner, lines, false);
  if (!isRoot) lines.push(`${indent}}`);
}

/** What a state invokes, as a note beside it (on the root: beside its initial state). */
function renderInvokes(state: StateJson, indent: string, lines: string[], isRoot: boolean): void {
  if (state.invoke.length === 0) return;
  const sources = state.invoke.map((invoke) => invoke.src).join(', ');
  const anchor = isRoot ? state.initial?.target?.[0] : undefined;
  if (!isRoot) lines.push(`${indent}note right of ${nodeName(state.id)} : invokes ${sources}`);
  else if (anchor) lines.push(`${indent}note right of ${nodeName(anchor)} : children (invoked) ${sources}`);
}

function renderState(state: StateJson, indent: string, lines: string[], isRoot: boolean): void {
  const hasChildren = Object.keys(state.states).length > 0;
  if (!isRoot) lines.push(`${indent}state "${state.key}" as ${nodeName(state.id)}${hasChildren ? ' {' : ''}`);
  if (hasChildren) renderChildren(state, indent, lines, isRoot);
  renderInvokes(state, indent, lines, isRoot);
}

/** Eventless (`always`) transitions are not in toJSON(): read them from the state node itself. */
function alwaysTransitions(machine: AnyStateMachine, id: string): TransitionJson[] {
  const node = machine.getStateNodeById(id);
  return (node.always ?? []).map((transition) => {
    const guard: unknown = transition.guard;
    const named = typeof guard === 'string' ? guard : guardType(guard);
    return { eventType: null, target: (transition.target ?? []).map((target) => `#${target.id}`), ...(named === undefined ? {} : { guard: named }) };
  });
}

/** The `type` of a guard given as an object or a function with one (a named guard), if it has one. */
function guardType(guard: unknown): string | undefined {
  if ((typeof guard !== 'object' && typeof guard !== 'function') || guard === null || !('type' in guard)) return undefined;
  return typeof guard.type === 'string' ? guard.type : undefined;
}

function renderTransitions(machine: AnyStateMachine, state: StateJson, lines: string[], isRoot: boolean): void {
  const from = isRoot ? 'any_state' : nodeName(state.id);
  for (const transition of [...alwaysTransitions(machine, state.id), ...state.transitions]) {
    const targets = transition.target ?? [];
    if (targets.length === 0) continue; // actions only: not a change of state
    for (const target of targets) {
      lines.push(`  ${from} --> ${nodeName(target)} : ${label(transition)}`);
    }
  }
  for (const child of Object.values(state.states)) renderTransitions(machine, child, lines, false);
}

/** A Mermaid `stateDiagram-v2` of the machine; transitions declared on the root are drawn from "any state". */
export function machineToMermaid(machine: AnyStateMachine): string {
  // A JSON round trip turns state node references into their `#id` strings.
  const root = StateJson.parse(JSON.parse(JSON.stringify(machine.toJSON())));
  const lines = ['stateDiagram-v2'];
  renderState(root, '  ', lines, true);
  if (root.transitions.some((transition) => (transition.target ?? []).length > 0)) {
    lines.push('  state "(any state)" as any_state');
  }
  renderTransitions(machine, root, lines, true);
  return `${lines.join('\n')}\n`;
}
