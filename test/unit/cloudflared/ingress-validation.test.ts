import { describe, expect, it } from 'vitest';
import type { IngressIssueKind, IngressRule } from '../../../src/ingress-model.ts';
import { validateCloudflaredConfig, validateConfigText, validateIngressRules } from '../../../src/cloudflared/ingress/ingress-validation.ts';

const CATCH_ALL: IngressRule = { service: 'http_status:404' };
const app = (extra: Partial<IngressRule> = {}): IngressRule => ({ hostname: 'app.example.com', service: 'http://localhost:8080', ...extra });

/** Each row: rules, the kind of issue expected, and the index it must name (null for the file). */
const INVALID: { name: string; rules: IngressRule[]; kind: IngressIssueKind; index: number | null }[] = [
  { name: 'no rules at all', rules: [], kind: 'no-rules', index: null },
  { name: 'last rule has a hostname', rules: [app()], kind: 'catch-all-not-last', index: 0 },
  { name: 'last rule has a path', rules: [app(), { path: '^/x', service: 'http_status:404' }], kind: 'catch-all-not-last', index: 1 },
  { name: 'last rule is "*" with a path', rules: [{ hostname: '*', path: '^/x', service: 'http_status:404' }], kind: 'catch-all-not-last', index: 0 },
  { name: 'catch-all before the end', rules: [CATCH_ALL, app(), CATCH_ALL], kind: 'catch-all-before-last', index: 0 },
  { name: '"*" hostname before the end', rules: [{ hostname: '*', service: 'http://localhost:1' }, app(), CATCH_ALL], kind: 'catch-all-before-last', index: 0 },
  { name: 'wildcard not leftmost', rules: [app({ hostname: 'app.*.example.com' }), CATCH_ALL], kind: 'bad-wildcard', index: 0 },
  { name: 'two wildcards', rules: [app({ hostname: '*.*.example.com' }), CATCH_ALL], kind: 'bad-wildcard', index: 0 },
  { name: 'wildcard inside the leftmost label', rules: [app({ hostname: '*app.example.com' }), CATCH_ALL], kind: 'bad-wildcard', index: 0 },
  { name: 'wildcard at the end', rules: [app({ hostname: 'example.*' }), CATCH_ALL], kind: 'bad-wildcard', index: 0 },
  { name: 'port in hostname', rules: [app({ hostname: 'app.example.com:8443' }), CATCH_ALL], kind: 'hostname-has-port', index: 0 },
  { name: 'scheme in hostname', rules: [app({ hostname: 'https://app.example.com' }), CATCH_ALL], kind: 'bad-hostname', index: 0 },
  { name: 'space in hostname', rules: [app({ hostname: 'app example.com' }), CATCH_ALL], kind: 'bad-hostname', index: 0 },
  { name: 'service without scheme', rules: [app({ service: 'localhost:8080' }), CATCH_ALL], kind: 'bad-service', index: 0 },
  { name: 'service without host', rules: [app({ service: 'http://' }), CATCH_ALL], kind: 'bad-service', index: 0 },
  { name: 'service with a path', rules: [app({ service: 'http://localhost:8080/api' }), CATCH_ALL], kind: 'service-has-path', index: 0 },
  { name: 'service with a trailing slash', rules: [app({ service: 'http://localhost:8080/' }), CATCH_ALL], kind: 'service-has-path', index: 0 },
  { name: 'service with a letter port', rules: [app({ service: 'http://localhost:80a' }), CATCH_ALL], kind: 'bad-service', index: 0 },
  { name: 'service missing', rules: [{ hostname: 'app.example.com' } as IngressRule, CATCH_ALL], kind: 'bad-service', index: 0 },
  { name: 'unix socket without path', rules: [app({ service: 'unix:' }), CATCH_ALL], kind: 'bad-service', index: 0 },
  { name: 'http_status not a number', rules: [app(), { service: 'http_status:abc' }], kind: 'bad-http-status', index: 1 },
  { name: 'http_status below 100', rules: [app(), { service: 'http_status:99' }], kind: 'bad-http-status', index: 1 },
  { name: 'http_status above 999', rules: [app(), { service: 'http_status:1000' }], kind: 'bad-http-status', index: 1 },
  { name: 'path regex does not compile', rules: [app({ path: '^/api/(' }), CATCH_ALL], kind: 'bad-path-regex', index: 0 },
  { name: 'path regex uses look-ahead (not RE2)', rules: [app({ path: '^/(?!admin)' }), CATCH_ALL], kind: 'bad-path-regex', index: 0 },
  { name: 'path regex uses a back-reference (not RE2)', rules: [app({ path: '^/(a)\\1' }), CATCH_ALL], kind: 'bad-path-regex', index: 0 },
  { name: 'duplicate hostname', rules: [app(), app({ service: 'http://localhost:9' }), CATCH_ALL], kind: 'duplicate-rule', index: 1 },
  { name: 'duplicate hostname differing in case', rules: [app({ path: '^/a' }), app({ hostname: 'APP.example.com', path: '^/a' }), CATCH_ALL], kind: 'duplicate-rule', index: 1 },
  { name: 'originRequest not a mapping', rules: [app({ originRequest: 'fast' as never }), CATCH_ALL], kind: 'bad-origin-request', index: 0 },
  { name: 'originRequest duration without unit', rules: [app({ originRequest: { connectTimeout: '30' } }), CATCH_ALL], kind: 'bad-origin-request', index: 0 },
  { name: 'originRequest boolean as text', rules: [app({ originRequest: { noTLSVerify: 'yes' as never } }), CATCH_ALL], kind: 'bad-origin-request', index: 0 },
];

const VALID: { name: string; rules: IngressRule[] }[] = [
  { name: 'just a catch-all', rules: [CATCH_ALL] },
  { name: 'catch-all as "*"', rules: [app(), { hostname: '*', service: 'http_status:404' }] },
  { name: 'a leftmost wildcard', rules: [app({ hostname: '*.example.com' }), CATCH_ALL] },
  { name: 'same hostname, different paths', rules: [app({ path: '^/api/' }), app(), CATCH_ALL] },
  { name: 'https with a port', rules: [app({ service: 'https://10.0.0.5:8443' }), CATCH_ALL] },
  { name: 'an IPv6 origin', rules: [app({ service: 'http://[::1]:8080' }), CATCH_ALL] },
  { name: 'tcp and ssh origins', rules: [app({ service: 'tcp://localhost:5432' }), app({ hostname: 'ssh.example.com', service: 'ssh://localhost:22' }), CATCH_ALL] },
  { name: 'unix and unix+tls sockets', rules: [app({ service: 'unix:/run/app.sock' }), app({ hostname: 'b.example.com', service: 'unix+tls:/run/b.sock' }), CATCH_ALL] },
  { name: 'hello_world and a custom status', rules: [app({ service: 'hello_world' }), { service: 'http_status:503' }] },
  { name: 'catch-all to a default origin', rules: [app(), { service: 'http://localhost:80' }] },
  { name: 'RE2 inline flags and named groups', rules: [app({ path: '(?i)^/(?P<v>api)/' }), CATCH_ALL] },
  { name: 'originRequest with known keys', rules: [app({ originRequest: { connectTimeout: '1m30s', noTLSVerify: true, httpHostHeader: 'x', keepAliveConnections: 10, somethingNew: [1] } }), CATCH_ALL] },
];

describe('validateIngressRules (cloudflared rules)', () => {
  it.each(INVALID)('refuses: $name', ({ rules, kind, index }) => {
    const issues = validateIngressRules(rules);
    const match = issues.find((issue) => issue.kind === kind);
    expect(match, JSON.stringify(issues)).toBeDefined();
    expect(match?.index).toBe(index);
    expect(match?.fix.length).toBeGreaterThan(10);
    if (index !== null) expect(match?.message).toContain(`ingress[${index}]`);
  });

  it.each(VALID)('accepts: $name', ({ rules }) => {
    expect(validateIngressRules(rules)).toEqual([]);
  });

  it('names the rule by hostname as well as index', () => {
    const [issue] = validateIngressRules([app({ hostname: 'shop.example.com:443' }), CATCH_ALL]);
    expect(issue?.hostname).toBe('shop.example.com:443');
    expect(issue?.message).toContain('shop.example.com:443');
    expect(issue?.fix).toContain('hostname: shop.example.com');
  });

  it('reports every problem at once, not only the first', () => {
    const issues = validateIngressRules([app({ hostname: 'a.example.com:1' }), app({ service: 'nope' }), app({ hostname: 'c.example.com' })]);
    expect(issues.map((issue) => [issue.index, issue.kind])).toEqual([
      [0, 'hostname-has-port'],
      [1, 'bad-service'],
      [2, 'catch-all-not-last'],
    ]);
  });

  it('checks the top-level originRequest defaults too', () => {
    const issues = validateCloudflaredConfig({ ingress: [CATCH_ALL], originRequest: { connectTimeout: 'soon' }, extra: {} });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.index).toBeNull();
    expect(issues[0]?.field).toBe('originRequest');
  });

  it('reads a file whose values have another type than the model: each is still named with its fix', () => {
    // The model keeps a top-level originRequest that is no mapping in `extra`; validation must still refuse it.
    const text = 'tunnel: 12345\noriginRequest: fast\ningress:\n  - hostname: 7\n    service: http://localhost:1\n  - 404\n';
    const issues = validateConfigText(text);
    expect(issues.map((issue) => [issue.index, issue.kind])).toEqual([
      [null, 'bad-origin-request'],
      [0, 'bad-hostname'],
      [1, 'bad-service'],
    ]);
    expect(issues[0]?.message).toContain('originRequest must be a mapping of settings, got string');
  });

  it('a frozen rule (as a config document holds it) is named each time it is wrong, and a sound one stays sound in another place', () => {
    const wrong: IngressRule = Object.freeze({ hostname: 'x.example.com', service: 'nope' });
    const sound: IngressRule = Object.freeze({ hostname: 'y.example.com', service: 'http://localhost:1' });
    for (let round = 0; round < 2; round += 1) {
      expect(validateIngressRules([wrong, sound, CATCH_ALL]).map((issue) => [issue.index, issue.kind])).toEqual([[0, 'bad-service']]);
    }
    expect(validateIngressRules([sound, sound, CATCH_ALL]).map((issue) => [issue.index, issue.kind])).toEqual([[1, 'duplicate-rule']]);
    expect(validateIngressRules([CATCH_ALL, sound]).map((issue) => [issue.index, issue.kind])).toEqual([[0, 'catch-all-before-last'], [1, 'catch-all-not-last']]);
  });
});
