import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TunnelManagerError, toErrorShape } from '../../../src/errors.ts';
import { authorize, authorizeTool, type PolicyFacts } from '../../../src/mcp/authorization.ts';

const MCP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'mcp');
const ms = { project: 'meta-supervisor', role: 'ms' } as const;
const a = { project: 'consilio', role: 'ps' } as const;

/** The ledger and the allocations of a small world: consilio's route on its port 3100, an adopted route. */
const facts: PolicyFacts = {
  routeOwner: (hostname) => ({ 'app.153.se': 'consilio', 'chat.153.se': 'meta-supervisor' })[hostname],
  assertPortOwned: (project, port) => {
    if (!(project === 'consilio' && port === 3100)) {
      throw new TunnelManagerError({ code: 'PORT_NOT_OWNED', message: `Port ${port} is not allocated to ${project}.`, fix: 'port_allocate', details: { port, project } });
    }
  },
};

const codeOf = (decide: () => unknown): string => {
  try {
    decide();
    return 'ok';
  } catch (error) {
    return toErrorShape(error).code;
  }
};

describe('the authorization policy', () => {
  it('decides from the principal and the resource', () => {
    expect(codeOf(() => authorizeTool(a, { name: 'tunnel_restart', access: 'ms' }))).toBe('FORBIDDEN');
    expect(codeOf(() => authorizeTool(ms, { name: 'tunnel_restart', access: 'ms' }))).toBe('ok');
    expect(codeOf(() => authorize(a, { kind: 'route', hostname: 'APP.153.se' }, facts))).toBe('ok');
    expect(codeOf(() => authorize(a, { kind: 'route', hostname: 'chat.153.se' }, facts))).toBe('ROUTE_NOT_OWNED');
    expect(codeOf(() => authorize(ms, { kind: 'route', hostname: 'app.153.se' }, facts))).toBe('ok');
    expect(codeOf(() => authorize(a, { kind: 'route', hostname: 'gone.153.se' }, facts))).toBe('ok'); // the backend says ROUTE_NOT_FOUND
    expect(codeOf(() => authorize(a, { kind: 'port', port: 3101 }, facts))).toBe('PORT_NOT_OWNED');
    expect(codeOf(() => authorize(ms, { kind: 'port', port: 3101 }, facts))).toBe('ok');
    expect(codeOf(() => authorize(a, { kind: 'project', project: 'odin', mode: 'act' }, facts))).toBe('FORBIDDEN');
  });

  it('answers the project a call is for', () => {
    expect(authorize(a, { kind: 'project', project: undefined, mode: 'read' }, facts)).toEqual({ project: 'consilio' });
    expect(authorize(a, { kind: 'project', project: 'consilio', mode: 'act' }, facts)).toEqual({ project: 'consilio' });
    expect(authorize(ms, { kind: 'project', project: undefined, mode: 'read' }, facts)).toEqual({ project: undefined });
    expect(authorize(ms, { kind: 'project', project: undefined, mode: 'act' }, facts)).toEqual({ project: 'meta-supervisor' });
    expect(authorize(ms, { kind: 'project', project: 'odin', mode: 'act' }, facts)).toEqual({ project: 'odin' });
  });

  it('is the only place in the MCP layer that refuses: tool handlers and resources read no role and raise no refusal', () => {
    const files = [...readdirSync(join(MCP, 'tools')).map((name) => join('tools', name)), 'resources.ts'];
    const offending = files.flatMap((file) => {
      const text = readFileSync(join(MCP, file), 'utf8');
      return [/\.role\b/, /'(FORBIDDEN|ROUTE_NOT_OWNED|PORT_NOT_OWNED)'/].filter((pattern) => pattern.test(text)).map((pattern) => `src/mcp/${file}: ${pattern}`);
    });
    expect(offending).toEqual([]);
  });
});
