import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TunnelManagerError, toErrorShape } from '../../../src/errors.ts';
import { authorize, authorizeLabelRoute, authorizeTool, sessionRefusal, type LabelRules, type PolicyFacts } from '../../../src/mcp/authorization.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
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
    expect(codeOf(() => authorize(a, { kind: 'port', port: 3101, use: 'inspect' }, facts))).toBe('PORT_NOT_OWNED');
    expect(codeOf(() => authorize(ms, { kind: 'port', port: 3101, use: 'inspect' }, facts))).toBe('ok');
    expect(codeOf(() => authorize(a, { kind: 'project', project: 'odin', mode: 'act' }, facts))).toBe('FORBIDDEN');
  });

  it('lets a route target only a port allocated to the project it is for, whoever asks', () => {
    expect(codeOf(() => authorize(a, { kind: 'port', port: 3100, use: 'target' }, facts))).toBe('ok');
    expect(codeOf(() => authorize(a, { kind: 'port', port: 3101, use: 'target' }, facts))).toBe('PORT_NOT_OWNED');
    // The meta-supervisor's routes are its own project's: consilio's port is not one of them.
    expect(codeOf(() => authorize(ms, { kind: 'port', port: 3100, use: 'target' }, facts))).toBe('PORT_NOT_OWNED');
  });

  it('answers the project a call is for', () => {
    expect(authorize(a, { kind: 'project', project: undefined, mode: 'read' }, facts)).toEqual({ project: 'consilio', actsFor: 'consilio' });
    expect(authorize(a, { kind: 'project', project: 'consilio', mode: 'act' }, facts)).toEqual({ project: 'consilio', actsFor: 'consilio' });
    expect(authorize(ms, { kind: 'project', project: undefined, mode: 'read' }, facts)).toEqual({ project: undefined, actsFor: 'meta-supervisor' });
    expect(authorize(ms, { kind: 'project', project: undefined, mode: 'act' }, facts)).toEqual({ project: 'meta-supervisor', actsFor: 'meta-supervisor' });
    expect(authorize(ms, { kind: 'project', project: 'odin', mode: 'act' }, facts)).toEqual({ project: 'odin', actsFor: 'odin' });
    expect(authorize(ms, { kind: 'port', port: 3100, use: 'inspect' }, facts)).toEqual({ project: undefined, actsFor: 'meta-supervisor' });
  });

  it('keeps a session to the project that opened it', () => {
    expect(sessionRefusal(a, 'consilio')).toBeNull();
    expect(sessionRefusal(ms, 'consilio')).toMatchObject({ code: 'FORBIDDEN', fix: expect.stringContaining('your own session') });
  });

  it('lets a label act for a project of labels.projects only, on a port it holds', () => {
    const rules: LabelRules = {
      labelProjects: new Set(['consilio']),
      projects: new Map([['consilio', 'ps'], ['odin', 'ps'], ['meta-supervisor', 'ms']]),
    };
    const label = (project: string, port: number, held = false) => () => authorizeLabelRoute({ container: 'web', hostname: 'web.153.se', port, project, held }, rules, facts);
    expect(codeOf(label('consilio', 3100))).toBe('ok');
    expect(codeOf(label('consilio', 3101))).toBe('PORT_NOT_OWNED');
    expect(codeOf(label('consilio', 3101, true))).toBe('ok'); // a route it already holds is honoured as it is
    expect(codeOf(label('odin', 3100))).toBe('FORBIDDEN');
    expect(codeOf(label('meta-supervisor', 3100))).toBe('FORBIDDEN');
    expect(codeOf(label('nobody', 3100))).toBe('FORBIDDEN');
  });
});

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

/** A branch on a role: `x.role === …`, `role !== …`. */
const ROLE_BRANCH = /\brole\s*[!=]==|[!=]==\s*[\w?.]+\.role\b/g;
/** A refusal raised or audited: an authorization error code written as a value. */
const REFUSAL = /'(FORBIDDEN|ROUTE_NOT_OWNED|PORT_NOT_OWNED|UNAUTHENTICATED)'/g;

/**
 * What may stay outside the policy, and why (docs/architecture.md, "Authorization"): authentication and the
 * listeners' DNS-rebinding guard come before any identity exists; the port manager states the fact the policy reads;
 * the configuration's own rules and the choice of whom to tell are not decisions about who may act. The count is the
 * number of matches allowed, so a new one in these files fails too.
 */
const ALLOWED: Record<string, { roleBranches?: number; refusals?: number; why: string }> = {
  'src/mcp/http-refusals.ts': { refusals: 3, why: 'DNS-rebinding guard (Host, Origin) and authentication (no or a wrong bearer token)' },
  'src/mcp/principal.ts': { refusals: 1, why: 'authentication: the stdio project named at launch must exist' },
  'src/app/operations/health-server.ts': { refusals: 1, why: "the metrics listener's DNS-rebinding guard" },
  'src/commands/call.ts': { refusals: 1, why: 'the CLI has no token to send: said before any call is made' },
  'src/ports/port-manager.ts': { refusals: 2, why: 'a project without a port range (configuration), and PORT_NOT_OWNED: the fact the policy reads (assertOwned) and the data rule of a release' },
  'src/app/config/config.ts': { roleBranches: 2, why: 'configuration: labels.projects names project supervisors only, and defaults to all of them' },
  'src/app/effects/zones-effects.ts': { roleBranches: 1, why: 'the operator project, told of adopted routes: whom to tell, not who may act' },
  'src/root/schedules.ts': { roleBranches: 1, why: 'the operator project, told of refused labels: whom to tell, not who may act' },
};

describe('the policy is the only place that decides who may act', () => {
  it('no file of src/ outside src/mcp/authorization.ts branches on a role or raises a refusal, but for the exceptions listed', () => {
    const found: string[] = [];
    const allowed: string[] = [];
    for (const path of sourceFiles(join(ROOT, 'src'))) {
      const file = relative(ROOT, path).split('\\').join('/');
      if (file === 'src/mcp/authorization.ts') continue;
      const text = readFileSync(path, 'utf8');
      const roleBranches = text.match(ROLE_BRANCH)?.length ?? 0;
      const refusals = text.match(REFUSAL)?.length ?? 0;
      if (roleBranches > 0) found.push(`${file}: ${roleBranches} role branch(es)`);
      if (refusals > 0) found.push(`${file}: ${refusals} refusal(s)`);
      const exception = ALLOWED[file];
      if (exception?.roleBranches) allowed.push(`${file}: ${exception.roleBranches} role branch(es)`);
      if (exception?.refusals) allowed.push(`${file}: ${exception.refusals} refusal(s)`);
    }
    expect(found.sort()).toEqual(allowed.sort());
  });
});
