import type { AnyStateMachine } from 'xstate';

/**
 * Mermaid state diagrams from a machine's own definition (`machine.toJSON()`), so the pictures in
 * docs/machines.md can never drift from the code: a test regenerates them and compares.
 */

interface TransitionJson {
  target?: string[];
  eventType: string | null;
  guard?: { type?: string } | string;
  delay?: string | number;
  reenter?: boolean;
}

interface StateJson {
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  initial?: { target?: string[] };
  states: Record<string, StateJson>;
  transitions: TransitionJson[];
  invoke: { id: string; src: string }[];
}

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

function renderState(state: StateJson, indent: string, lines: string[], isRoot: boolean): void {
  const children = Object.values(state.states);
  const name = nodeName(state.id);
  if (!isRoot) {
    if (children.length === 0) {
      lines.push(`${indent}state "${state.key}" as ${name}`);
    } else {
      lines.push(`${indent}state "${state.key}" as ${name} {`);
    }
  }
  const inner = isRoot ? indent : `${indent}  `;
  if (children.length > 0) {
    const initial = state.initial?.target?.[0];
    if (initial) lines.push(`${inner}[*] --> ${nodeName(initial)}`);
    for (const child of children) renderState(child, inner, lines, false);
    if (!isRoot) lines.push(`${indent}}`);
  }
  if (state.invoke.length > 0) {
    const sources = state.invoke.map((invoke) => invoke.src).join(', ');
    const anchor = isRoot ? state.initial?.target?.[0] : undefined;
    if (!isRoot) lines.push(`${indent}note right of ${name} : invokes ${sources}`);
    else if (anchor) lines.push(`${indent}note right of ${nodeName(anchor)} : children (invoked) ${sources}`);
  }
}

/** Eventless (`always`) transitions are not in toJSON(): read them from the state node itself. */
function alwaysTransitions(machine: AnyStateMachine, id: string): TransitionJson[] {
  const node = machine.getStateNodeById(id) as unknown as {
    always?: { target?: { id: string }[]; guard?: { type?: string } | string }[];
  };
  return (node.always ?? []).map((transition) => ({
    eventType: null,
    target: (transition.target ?? []).map((target) => `#${target.id}`),
    ...(transition.guard === undefined ? {} : { guard: transition.guard }),
  }));
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
  const root = JSON.parse(JSON.stringify(machine.toJSON())) as StateJson;
  const lines = ['stateDiagram-v2'];
  renderState(root, '  ', lines, true);
  if (root.transitions.some((transition) => (transition.target ?? []).length > 0)) {
    lines.push('  state "(any state)" as any_state');
  }
  renderTransitions(machine, root, lines, true);
  return `${lines.join('\n')}\n`;
}
