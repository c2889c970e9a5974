import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { call, mcpClient, startTestService } from '../helpers/service.ts';

/**
 * Bad input over real Streamable HTTP, generated with fast-check: every call is refused with the error shape
 * (a code among the input codes, a message naming the argument, a fix), and nothing changes: not the ledger,
 * not the port allocations, not the Cloudflare emulator's records, not config.yml.
 */

interface ErrorData {
  code: string;
  message: string;
  fix: string;
  details: Record<string, unknown>;
}

const INPUT_CODES = ['INPUT_INVALID', 'HOSTNAME_INVALID', 'PORT_NOT_OWNED', 'ZONE_NOT_FOUND'];
const RUNS = Number(process.env.TM_FC_RUNS ?? 60);

let env: Awaited<ReturnType<typeof startTestService>>;
let consilio: Client;
let ms: Client;
let ownPort: number;

/** Everything a bad call must leave untouched. */
async function snapshot(): Promise<string> {
  const routes = await call<{ routes: unknown[] }>(ms, 'tunnel_list_cnames');
  const ports = await call<{ allocations: unknown[] }>(ms, 'port_list');
  expect(routes.isError || ports.isError).toBe(false);
  return JSON.stringify({
    routes: routes.data.routes,
    ports: ports.data.allocations,
    records: env.service.sandbox!.emulator.state().records,
    config: readFileSync(env.config.cloudflared.configPath, 'utf8'),
  });
}

/** Calls `tool`, expects a refusal naming `field`, and checks that nothing changed. */
async function expectRefused(tool: string, args: Record<string, unknown>, field: string, baseline: string, codes = INPUT_CODES): Promise<ErrorData> {
  const result = await call<ErrorData>(consilio, tool, args);
  const shown = `${tool} ${JSON.stringify(args).slice(0, 300)} → ${JSON.stringify(result.data).slice(0, 400)}`;
  expect(result.isError, shown).toBe(true);
  expect(codes, shown).toContain(result.data.code);
  expect(result.data.message, shown).toContain(field);
  expect(result.data.fix.trim().length, shown).toBeGreaterThan(0);
  expect(result.data.details, shown).toBeTypeOf('object');
  const now = await snapshot();
  if (now !== baseline) {
    // Say which part of the world changed, not just that the long strings differ.
    const before = JSON.parse(baseline) as Record<string, unknown>;
    const after = JSON.parse(now) as Record<string, unknown>;
    for (const part of Object.keys(before)) expect(after[part], `${part} changed after ${shown}`).toEqual(before[part]);
  }
  return result.data;
}

// ---- generators -------------------------------------------------------------------------------------------

const VALID_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** An independent oracle: is this a subdomain the service must accept (under 153.se)? */
function isValidSubdomain(value: string): boolean {
  return value.length > 0 && `${value}.153.se`.length <= 253 && value.split('.').every((label) => VALID_LABEL.test(label));
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const validSubdomain = fc.array(label, { minLength: 1, maxLength: 3 }).map((labels) => labels.join('.'));
const METACHARACTERS = [':', '#', "'", '"', ';', '--', '{', '}', '[', ']', '*', '&', '|', '>', '%', '!', '@', '`', ',', '?', '/', '\\', '=', '$', ' ', '_', '+'];
const CONTROL = ['\n', '\r', '\t', '\u0000', '\u0007', '\u001b', '\u007f', '\r\n', '\u2028', '\u0085'];

/** Inserts `bad` somewhere inside a valid subdomain. */
function spliced(bad: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(validSubdomain, bad, fc.nat()).map(([good, inserted, at]) => {
    const index = at % (good.length + 1);
    return good.slice(0, index) + inserted + good.slice(index);
  });
}

const nonAscii = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }).filter((s) => /[^\x00-\x7f]/.test(s));
const injections = fc.constantFrom(
  "a: b\n  service: http://evil:1",
  "x'; DROP TABLE routes; --",
  '" OR 1=1 --',
  '{ hostname: evil }',
  '[evil]',
  '*.153.se',
  '&anchor',
  '*alias',
  '- hostname: evil.153.se',
  '#comment',
  '${jndi:ldap://x}',
  '../../etc/passwd',
);

const badSubdomain: fc.Arbitrary<string> = fc
  .oneof(
    fc.constant(''),
    spliced(nonAscii),
    spliced(fc.constantFrom(...METACHARACTERS)),
    spliced(fc.constantFrom(...CONTROL)),
    spliced(fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), minLength: 1, maxLength: 3 })),
    validSubdomain.map((s) => `.${s}`),
    validSubdomain.map((s) => `${s}.`),
    validSubdomain.map((s) => `${s}..${s}`),
    validSubdomain.map((s) => `-${s}`),
    validSubdomain.map((s) => `${s}-`),
    validSubdomain.map((s) => ` ${s}`),
    fc.integer({ min: 64, max: 300 }).map((n) => 'a'.repeat(n)), // one label too long
    fc.integer({ min: 30, max: 80 }).map((n) => Array.from({ length: n }, () => 'abcdefg').join('.')), // too long in all
    fc.integer({ min: 254, max: 5000 }).map((n) => 'b'.repeat(n)), // beyond the schema's 253
    spliced(injections),
    fc.string({ unit: 'binary', maxLength: 40 }),
  )
  .filter((value) => !isValidSubdomain(value));

/** Always tried first, so every kind of bad input is covered whatever the random seed. */
const SUBDOMAIN_EXAMPLES = [
  '',
  'App',
  'app.',
  '.app',
  'a..b',
  '-app',
  'app-',
  ' app',
  'a\nb',
  'a\u0000b',
  'ä',
  'app💥',
  'a'.repeat(64),
  'a'.repeat(254),
  Array.from({ length: 40 }, () => 'abcdefg').join('.'),
  'app:\n  service: http://evil:1',
  "x'; DROP TABLE routes; --",
  '*.app',
  '{app}',
  '[app]',
  '&app',
  'a#b',
  'a"b',
];

const badDomain: fc.Arbitrary<string> = fc
  .oneof(
    badSubdomain,
    fc.constantFrom('153.se.', '.153.se', '153.se\n', '153 .se', 'example.com', 'se', '153.se; DROP TABLE zones', '153.se#', 'xn--53-.se'),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
  )
  .filter((value) => !['153.se', 'horizon-lab.dev', 'odin-studio.net'].includes(value.toLowerCase()));

/** Port values that are not a port at all. */
const notAPort: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(0),
  fc.integer({ min: -1_000_000, max: -1 }),
  fc.integer({ min: 65_536, max: 10_000_000 }),
  fc.double({ min: 1, max: 65_535, noNaN: true }).filter((n) => !Number.isInteger(n)),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -0.5, 1e21, 3100.5),
  fc.string({ maxLength: 10 }),
  fc.integer({ min: 1, max: 65_535 }).map(String), // "3100": a string, not a number
  fc.constantFrom(null, true, false, [], [3100], {}, { port: 3100 }),
);

// ---- tests -----------------------------------------------------------------------------------------------

beforeAll(async () => {
  env = await startTestService();
  const info = env.service.sandboxInfo!;
  consilio = await mcpClient(info.mcpUrl, info.tokens.consilio!);
  ms = await mcpClient(info.mcpUrl, info.tokens['meta-supervisor']!);
  const allocated = await call<{ port: number }>(consilio, 'port_allocate', { purpose: 'bad input test' });
  expect(allocated.isError).toBe(false);
  ownPort = allocated.data.port;
  // One real route, so "nothing changed" covers a ledger, a record and a rule that exist.
  // Nothing listens on the port: this file is about the MCP surface, so the route is published ahead of its service.
  const route = await call(consilio, 'tunnel_request_cname', { subdomain: 'stable', targetPort: ownPort, publishAhead: true });
  expect(route.isError, JSON.stringify(route.data)).toBe(false);
}, 60_000);

afterAll(async () => {
  await Promise.all([consilio?.close(), ms?.close()]);
  await env?.stop();
});

describe('the generators', () => {
  it('the oracle accepts what the service accepts', () => {
    expect(isValidSubdomain('app')).toBe(true);
    expect(isValidSubdomain('api.staging')).toBe(true);
    expect(isValidSubdomain('App')).toBe(false);
    expect(isValidSubdomain('a_b')).toBe(false);
  });
});

describe('tunnel_request_cname refuses bad input and changes nothing', () => {
  it('bad subdomains: unicode, very long, YAML/SQL metacharacters, control characters, empty, upper case, dots at the ends', async () => {
    const baseline = await snapshot();
    await fc.assert(
      fc.asyncProperty(badSubdomain, async (subdomain) => {
        const error = await expectRefused('tunnel_request_cname', { subdomain, targetPort: ownPort }, 'subdomain', baseline);
        expect(['INPUT_INVALID', 'HOSTNAME_INVALID']).toContain(error.code);
      }),
      { numRuns: RUNS, examples: SUBDOMAIN_EXAMPLES.map((example) => [example]) },
    );
  });

  it('the same bad subdomains in a dry run', async () => {
    const baseline = await snapshot();
    await fc.assert(
      fc.asyncProperty(badSubdomain, async (subdomain) => {
        await expectRefused('tunnel_request_cname', { subdomain, targetPort: ownPort, dryRun: true }, 'subdomain', baseline);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });

  it('bad domains', async () => {
    const baseline = await snapshot();
    await fc.assert(
      fc.asyncProperty(badDomain, async (domain) => {
        const error = await expectRefused('tunnel_request_cname', { subdomain: 'fine', domain, targetPort: ownPort }, 'domain', baseline);
        expect(['INPUT_INVALID', 'ZONE_NOT_FOUND']).toContain(error.code);
      }),
      { numRuns: RUNS },
    );
  });

  it('ports that are not ports', async () => {
    const baseline = await snapshot();
    await fc.assert(
      fc.asyncProperty(notAPort, async (targetPort) => {
        const error = await expectRefused('tunnel_request_cname', { subdomain: 'fine', targetPort }, 'targetPort', baseline);
        expect(error.code).toBe('INPUT_INVALID');
      }),
      { numRuns: RUNS },
    );
    // A missing port names the field too.
    await expectRefused('tunnel_request_cname', { subdomain: 'fine' }, 'targetPort', baseline);
  });

  it('real ports that are not allocated to the caller: PORT_NOT_OWNED with a fix naming port_allocate', async () => {
    const baseline = await snapshot();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 65_535 }).filter((port) => port !== ownPort),
        async (targetPort) => {
          const error = await expectRefused('tunnel_request_cname', { subdomain: 'fine', targetPort }, String(targetPort), baseline);
          expect(error.code).toBe('PORT_NOT_OWNED');
          expect(error.fix).toContain('port_allocate');
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('origin settings that could break out of YAML, expiries and unknown arguments', async () => {
    const baseline = await snapshot();
    const hostile = fc.oneof(spliced(fc.constantFrom(...METACHARACTERS, ...CONTROL)), injections, nonAscii, fc.constant(''));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('httpHostHeader', 'originServerName', 'connectTimeout'), hostile, async (key, value) => {
        // A splice of '--' into a name is still a well-formed host name, which these keys rightly accept.
        fc.pre(!(key === 'connectTimeout' ? /^\d+(ms|s|m)$/ : /^[A-Za-z0-9.-]{1,253}$/).test(value));
        await expectRefused('tunnel_request_cname', { subdomain: 'fine', targetPort: ownPort, originRequest: { [key]: value } }, `originRequest.${key}`, baseline);
      }),
      { numRuns: RUNS },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.integer({ max: 59 }), fc.integer({ min: 366 * 24 * 3600 + 1 }), fc.double({ min: 60, max: 1000, noNaN: true }).filter((n) => !Number.isInteger(n)), fc.string()), async (expiresInSeconds) => {
        await expectRefused('tunnel_request_cname', { subdomain: 'fine', targetPort: ownPort, expiresInSeconds }, 'expiresInSeconds', baseline);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
    await expectRefused('tunnel_request_cname', { subdomain: 'fine', targetPort: ownPort, originRequest: { 'ingress: [': 'x' } }, 'ingress: [', baseline);
    await expectRefused('tunnel_request_cname', { subdomain: 'fine', targetPort: ownPort, service: 'http://evil:1' }, 'service', baseline);
  });
});

describe('the other tools refuse bad input the same way', () => {
  it('an unknown argument is named in the fix with the arguments the tool takes, and following the fix works', async () => {
    // tunnel_get_audit said "Correct `(arguments)`", naming nothing (issue 27, item 6).
    const refused = await call<ErrorData>(ms, 'tunnel_get_audit', { limit: 5, since: 1, sort: 'asc' });
    expect(refused.isError).toBe(true);
    expect(refused.data.code).toBe('INPUT_INVALID');
    expect(refused.data.fix).not.toContain('(arguments)');
    expect(refused.data.fix).toContain('Remove `since`, `sort`');
    expect(refused.data.fix).toContain('`limit`, `principal`, `before`');
    expect(refused.data.details.problems).toEqual([
      { field: 'since', problem: 'not an argument of this tool' },
      { field: 'sort', problem: 'not an argument of this tool' },
    ]);
    // Followed as written: the named arguments removed, the call goes through.
    const followed = await call<{ entries: unknown[] }>(ms, 'tunnel_get_audit', { limit: 5 });
    expect(followed.isError).toBe(false);
    // A wrong value and an unknown argument at once: both named, each with its step.
    const both = await call<ErrorData>(consilio, 'tunnel_request_cname', { subdomain: 'fine', targetPort: 70000, service: 'http://evil:1' });
    expect(both.data.fix).toMatch(/^Correct `targetPort` and remove `service` \(tunnel_request_cname takes `subdomain`, /);
  });

  it('tunnel_delete_cname with names that are no DNS names', async () => {
    const baseline = await snapshot();
    await fc.assert(
      fc.asyncProperty(
        badSubdomain.filter((s) => !isValidSubdomain(s.toLowerCase())).map((s) => `${s}.153.se`),
        async (hostname) => {
          const error = await expectRefused('tunnel_delete_cname', { hostname }, 'hostname', baseline);
          expect(['INPUT_INVALID', 'HOSTNAME_INVALID']).toContain(error.code);
        },
      ),
      { numRuns: RUNS },
    );
    await expectRefused('tunnel_delete_cname', { hostname: '' }, 'hostname', baseline);
  });

  it('port_allocate, port_release and tunnel_check_connectivity with ports that are not ports', async () => {
    const baseline = await snapshot();
    await fc.assert(
      fc.asyncProperty(notAPort, fc.constantFrom('port_allocate', 'port_release', 'tunnel_check_connectivity', 'tunnel_recommend_config'), async (value, tool) => {
        const field = tool.startsWith('port_') ? 'port' : 'targetPort';
        const args = tool === 'port_allocate' ? { port: value, purpose: 'x' } : { [field]: value };
        const error = await expectRefused(tool, args, field, baseline);
        expect(error.code).toBe('INPUT_INVALID');
      }),
      { numRuns: RUNS },
    );
  });

  it('port_allocate with a purpose that is empty, too long, or not one line', async () => {
    const baseline = await snapshot();
    const badPurpose = fc.oneof(
      fc.constant(''),
      fc.integer({ min: 201, max: 3000 }).map((n) => 'p'.repeat(n)),
      spliced(fc.constantFrom(...CONTROL)),
      fc.constantFrom(null, 3, [], {}),
    );
    await fc.assert(
      fc.asyncProperty(badPurpose, async (purpose) => {
        await expectRefused('port_allocate', { purpose }, 'purpose', baseline);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });
});
