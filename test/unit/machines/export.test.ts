import { describe, expect, it } from 'vitest';
import { createActor, createMachine, fromPromise, type AnyStateMachine } from 'xstate';
import { MACHINES } from '../../../machines/index.ts';
import { machineConfigOf } from '../../../src/app/operations/machine-export.ts';

/**
 * `machines export --format json` writes configs that XState takes back: each machine's JSON, loaded with
 * `createMachine()` (no-op implementations for the names it uses), starts, and has the same states and the same
 * transitions (every event, `always` and `after` included, each from the same state to the same targets).
 */

interface Shape {
  states: string[];
  transitions: string[];
}

type Node = {
  id: string;
  states: Record<string, Node>;
  transitions: Map<string, { target?: { id: string }[]; guard?: unknown }[]>;
  always?: { target?: { id: string }[]; guard?: unknown }[];
  invoke: { id: string }[];
};

function shapeOf(machine: AnyStateMachine): Shape {
  const states: string[] = [];
  const transitions: string[] = [];
  const describe = (source: string, event: string, list: { target?: { id: string }[]; guard?: unknown }[]) => {
    for (const transition of list) {
      transitions.push(`${source} --${event}${transition.guard === undefined ? '' : ' [guarded]'}--> ${(transition.target ?? []).map((target) => target.id).sort().join(',')}`);
    }
  };
  const walk = (node: Node) => {
    states.push(node.id);
    for (const [event, list] of node.transitions) describe(node.id, event, list);
    describe(node.id, '(always)', node.always ?? []);
    for (const invoke of node.invoke) transitions.push(`${node.id} invokes ${invoke.id}`);
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(machine.root as unknown as Node);
  return { states: states.sort(), transitions: transitions.sort() };
}

/** Every name a config uses for actions, guards, actors and delays, so the loaded machine can be given no-ops. */
function namesIn(config: unknown): { actions: Set<string>; guards: Set<string>; actors: Set<string>; delays: Set<string> } {
  const names = { actions: new Set<string>(), guards: new Set<string>(), actors: new Set<string>(), delays: new Set<string>() };
  const nameOf = (value: unknown) => (typeof value === 'string' ? value : (value as { type?: string } | undefined)?.type);
  const visit = (value: unknown, key: string | null): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item, key);
      return;
    }
    if (key === 'guard') {
      const name = nameOf(value);
      if (name) names.guards.add(name);
      return;
    }
    if (key === 'actions' || key === 'entry' || key === 'exit') {
      const name = nameOf(value);
      if (name) names.actions.add(name);
      return;
    }
    if (key === 'src' && typeof value === 'string') names.actors.add(value);
    if (value === null || typeof value !== 'object') return;
    for (const [child, inner] of Object.entries(value)) {
      if (key === 'after' && !/^\d+$/.test(child)) names.delays.add(child);
      visit(inner, child);
    }
  };
  visit(config, null);
  return names;
}

describe.each(Object.entries(MACHINES))('machines export: %s', (_name, machine) => {
  const json = JSON.parse(JSON.stringify(machineConfigOf(machine as AnyStateMachine))) as Record<string, unknown>;
  const names = namesIn(json);
  const loaded = createMachine(json as never, {
    actions: Object.fromEntries([...names.actions].map((name) => [name, () => undefined])),
    guards: Object.fromEntries([...names.guards].map((name) => [name, () => false])),
    actors: Object.fromEntries([...names.actors].map((name) => [name, fromPromise(() => new Promise<never>(() => undefined))])),
    delays: Object.fromEntries([...names.delays].map((name) => [name, 1000])),
  } as never) as AnyStateMachine;

  it('loads back into createMachine() and starts', () => {
    const actor = createActor(loaded, { input: {} });
    expect(() => actor.start()).not.toThrow();
    expect(actor.getSnapshot().status).not.toBe('error');
    actor.stop();
  });

  it('has the same states and every transition, eventless and delayed ones included', () => {
    const original = shapeOf(machine as AnyStateMachine);
    expect(shapeOf(loaded)).toEqual(original);
    expect(original.transitions.length).toBeGreaterThan(0);
  });
});

describe('machines export keeps what toJSON() lost', () => {
  it('the eventless transitions of tunnel.booting, ingress.settling, route.routing and route.deletingDns', () => {
    const text = JSON.stringify(Object.fromEntries(Object.entries(MACHINES).map(([name, machine]) => [name, machineConfigOf(machine as AnyStateMachine)])));
    for (const [machine, state] of [['tunnel', 'booting'], ['ingress', 'settling'], ['route', 'routing'], ['route', 'deletingDns']] as const) {
      const node = (machineConfigOf(MACHINES[machine] as AnyStateMachine).states as Record<string, { always?: unknown }>)[state];
      expect(node?.always, `${machine}.${state}`).toBeDefined();
    }
    expect(text).toContain('not(dnsCreatedHere)');
  });
});
