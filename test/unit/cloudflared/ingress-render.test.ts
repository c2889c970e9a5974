import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigDocument } from '../../../src/cloudflared/ingress/config-document.ts';
import { matchIngressRule } from '../../../src/cloudflared/ingress/ingress-match.ts';
import { renderIngressConfig, type LedgerRule } from '../../../src/cloudflared/ingress/ingress-render.ts';
import { validateCloudflaredConfig } from '../../../src/cloudflared/ingress/ingress-validation.ts';
import { REAL_WORLD_CONFIG } from './fixtures.ts';

const LEDGER: LedgerRule[] = [
  { hostname: 'zeta.example.com', service: 'http://localhost:3001', project: 'alpha', targetReason: 'cloudflared runs on the host; service listens on localhost:3001' },
  { hostname: '*.apps.example.com', service: 'http://localhost:3002', project: 'beta', targetReason: 'wildcard for preview apps' },
  { hostname: 'api.example.com', path: '^/v2/', service: 'http://api-v2:8080', project: 'gamma', targetReason: 'container api-v2 shares network tm-edge with cloudflared' },
  { hostname: 'api.example.com', service: 'http://api:8080', project: 'gamma', targetReason: 'container api shares network tm-edge with cloudflared', originRequest: { noTLSVerify: true, connectTimeout: '5s' } },
  { hostname: '*.x.apps.example.com', service: 'http://localhost:3003', project: 'beta', targetReason: 'narrower wildcard' },
  { hostname: 'alpha.example.com', service: 'http://localhost:3000', project: 'alpha', targetReason: 'host port' },
];

function hostnamesInOrder(content: string): (string | undefined)[] {
  return ConfigDocument.parse(content).model().ingress.map((rule) => (rule.path ? `${rule.hostname} ${rule.path}` : rule.hostname));
}

describe('renderIngressConfig', () => {
  it('orders managed rules: exact before wildcards, narrower wildcards first, longer paths first, then by name', () => {
    const rendered = renderIngressConfig(null, LEDGER);
    expect(hostnamesInOrder(rendered.content)).toEqual([
      'api.example.com ^/v2/',
      'alpha.example.com',
      'api.example.com',
      'zeta.example.com',
      '*.x.apps.example.com',
      '*.apps.example.com',
      undefined,
    ]);
    expect(rendered.issues).toEqual([]);
  });

  it('retiring a hostname drops its hand-written rules (any path, any case) and nothing else, wildcards included', () => {
    const hand = ConfigDocument.parse(
      'tunnel: t\ningress:\n' +
        '  - hostname: Chat.Example.com\n    path: ^/ws\n    service: http://localhost:3998\n' +
        '  - hostname: chat.example.com\n    service: http://localhost:3999\n' +
        '  - hostname: "*.example.com"\n    service: http://localhost:4000\n' +
        '  - hostname: chatter.example.com\n    service: http://localhost:4001\n' +
        '  - service: http_status:404\n',
    );
    const rendered = renderIngressConfig(hand, [], ['chat.example.com']);
    expect(hostnamesInOrder(rendered.content)).toEqual(['*.example.com', 'chatter.example.com', undefined]);
    expect(renderIngressConfig(hand, []).config.ingress).toHaveLength(5);
  });

  it('gives every managed rule a comment naming its owner and why its target was chosen', () => {
    const { content } = renderIngressConfig(null, LEDGER);
    expect(content).toContain(
      '  # tunnel-manager: managed rule for api.example.com path ^/v2/ · owner: project gamma\n' +
        '  # target http://api-v2:8080: container api-v2 shares network tm-edge with cloudflared\n' +
        '  - hostname: api.example.com\n    path: ^/v2/\n    service: http://api-v2:8080\n',
    );
    expect(content).toContain('    originRequest:\n      connectTimeout: 5s\n      noTLSVerify: true\n');
    expect(content.trimEnd().endsWith('- service: http_status:404')).toBe(true);
  });

  it('keeps a reason with newlines or YAML characters on one comment line', () => {
    const { content } = renderIngressConfig(null, [{ hostname: 'a.example.com', service: 'http://x:1', project: 'p', targetReason: 'line one\nservice: evil\n- injected' }]);
    expect(content).toContain('# target http://x:1: line one service: evil - injected\n');
    expect(ConfigDocument.parse(content).model().ingress).toHaveLength(2);
  });

  it('keeps unmanaged rules where they were, byte for byte, and puts managed ones before the catch-all', () => {
    const rendered = renderIngressConfig(ConfigDocument.parse(REAL_WORLD_CONFIG), LEDGER);
    const original = ConfigDocument.parse(REAL_WORLD_CONFIG).rules();
    const head = REAL_WORLD_CONFIG.slice(0, REAL_WORLD_CONFIG.indexOf('  # Grafana'));
    expect(rendered.content.startsWith(head + original[0]?.text + original[1]?.text + original[2]?.text)).toBe(true);
    expect(rendered.content.endsWith('  - service: http_status:404   # everything else\n# end of ingress\nretries: 5\n')).toBe(true);
    expect(rendered.unmanagedIndexes).toEqual([0, 1, 2, 9]);
    expect(rendered.issues).toEqual([]);
  });

  it('renders the same state to the same bytes, and its own output is a fixed point', () => {
    const first = renderIngressConfig(ConfigDocument.parse(REAL_WORLD_CONFIG), LEDGER);
    const reversed = renderIngressConfig(ConfigDocument.parse(REAL_WORLD_CONFIG), [...LEDGER].reverse());
    expect(reversed.content).toBe(first.content);
    expect(renderIngressConfig(ConfigDocument.parse(first.content), LEDGER).content).toBe(first.content);
  });

  it('removes a managed rule whose route left the ledger, and keeps a copied rule whose hostname was changed', () => {
    const file = [
      'ingress:',
      '  # tunnel-manager: managed rule for zeta.example.com · owner: project alpha',
      '  # target http://localhost:3001: host port',
      '  - hostname: zeta.example.com',
      '    service: http://localhost:3001',
      '  # tunnel-manager: managed rule for zeta.example.com · owner: project alpha',
      '  # target http://localhost:3001: host port',
      '  - hostname: mine.example.com',
      '    service: http://localhost:4000',
      '  - service: http_status:404',
      '',
    ].join('\n');
    const rendered = renderIngressConfig(ConfigDocument.parse(file), [LEDGER[1] as LedgerRule]);
    expect(hostnamesInOrder(rendered.content)).toEqual(['mine.example.com', '*.apps.example.com', undefined]);
    expect(rendered.content).toContain('  - hostname: mine.example.com\n    service: http://localhost:4000\n');
  });

  it('warns when a hand-written rule above shadows a managed one', () => {
    const file = 'ingress:\n  - hostname: "*.example.com"\n    service: http://localhost:9\n  - service: http_status:404\n';
    const rendered = renderIngressConfig(ConfigDocument.parse(file), [LEDGER[0] as LedgerRule]);
    expect(rendered.shadowed).toEqual([{ hostname: 'zeta.example.com', path: null, byIndex: 0 }]);
  });

  it('always renders a file cloudflared accepts, whose rules route each ledger hostname to its own rule (property)', () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
    const ruleArb = fc.record({
      sub: label,
      wildcard: fc.boolean(),
      path: fc.option(fc.constantFrom('^/api/', '^/v1/', '\\.png$', '^/a/b/c'), { nil: undefined }),
      port: fc.integer({ min: 1, max: 65535 }),
      project: fc.constantFrom('alpha', 'beta'),
    });
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 15 }), fc.boolean(), (specs, withForeign) => {
        const ledger: LedgerRule[] = specs.map((spec) => ({
          hostname: spec.wildcard ? `*.${spec.sub}.example.com` : `${spec.sub}.example.com`,
          ...(spec.path ? { path: spec.path } : {}),
          service: `http://localhost:${spec.port}`,
          project: spec.project,
          targetReason: 'host port',
        }));
        const base = withForeign ? ConfigDocument.parse(REAL_WORLD_CONFIG) : null;
        const rendered = renderIngressConfig(base, ledger);
        expect(validateCloudflaredConfig(ConfigDocument.parse(rendered.content).model())).toEqual([]);
        const shuffled = renderIngressConfig(base, [...ledger].reverse());
        expect(shuffled.content).toBe(rendered.content);
        const rules = rendered.config.ingress;
        for (const rule of rendered.managed) {
          if (rule.hostname.startsWith('*.') || rule.path) continue;
          const index = matchIngressRule(rules, rule.hostname, '/');
          expect(rules[index]?.hostname).toBe(rule.hostname);
        }
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 150), ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
    );
  });

  it('makes the rendered document from its parts exactly as parsing its text would (property)', () => {
    const sameAsParsed = (document: ConfigDocument): void => {
      const parsed = ConfigDocument.parseFresh(document.source);
      expect(document.rules()).toEqual(parsed.rules());
      expect(document.model()).toEqual(parsed.model());
      expect(document.layout).toEqual(parsed.layout);
      const texts = parsed.rules().map((chunk) => chunk.text);
      expect(document.withIngressChunks(texts.slice(1))).toBe(parsed.withIngressChunks(texts.slice(1)));
    };
    const tricky = [
      'tunnel: t\ningress:\n  - hostname: a.example.com\n    service: http://localhost:1\n    # indented note under a rule\n\n  # above b\n  - hostname: b.example.com   # inline\n    service: http://localhost:2\n  -\n    hostname: c.example.com\n    service: http://localhost:3\n  - http_status:404\n# after\nretries: 5\n',
      REAL_WORLD_CONFIG.replace(/\n/g, '\r\n'),
      'ingress:\n- hostname: x.example.com\n  service: http://localhost:9\n- service: http_status:404',
    ];
    const reason = fc.constantFrom('host port', 'line one\nline: two # not a comment', "it's \"quoted\"", '');
    const ruleArb = fc.record({
      sub: fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/),
      wildcard: fc.boolean(),
      path: fc.option(fc.constantFrom('^/api/', '\\.png$', "^/it's/#x"), { nil: undefined }),
      service: fc.constantFrom('http://localhost:3000', 'http://api:8080', 'http_status:404', 'unix:/run/a b.sock'),
      reason,
      originRequest: fc.option(fc.record({ noTLSVerify: fc.boolean(), connectTimeout: fc.constantFrom('5s', '1m'), httpHostHeader: fc.constantFrom('yes', 'null', '1.0', 'a: b') }, { requiredKeys: [] }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 12 }), fc.array(ruleArb, { maxLength: 12 }), fc.constantFrom(null, REAL_WORLD_CONFIG, ...tricky), (first, second, file) => {
        const ledgerOf = (specs: typeof first): LedgerRule[] =>
          specs.map((spec) => ({
            hostname: spec.wildcard ? `*.${spec.sub}.example.com` : `${spec.sub}.example.com`,
            ...(spec.path ? { path: spec.path } : {}),
            service: spec.service,
            project: 'alpha',
            targetReason: spec.reason,
            ...(spec.originRequest ? { originRequest: spec.originRequest } : {}),
          }));
        const once = renderIngressConfig(file === null ? null : ConfigDocument.parse(file), ledgerOf(first));
        const document = ConfigDocument.parse(once.content);
        sameAsParsed(document);
        const twice = renderIngressConfig(document, ledgerOf(second));
        sameAsParsed(ConfigDocument.parse(twice.content));
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 150), ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
    );
  });

  it('a route change re-checks the changed rule: a bad one among 200 unchanged is still refused, and each version keys what cloudflared sees', () => {
    const routes = (count: number): LedgerRule[] =>
      Array.from({ length: count }, (_, n) => ({ hostname: `app${n}.example.com`, service: `http://localhost:${3000 + n}`, project: 'alpha' }));
    const first = renderIngressConfig(null, routes(200));
    expect(first.issues).toEqual([]);
    // The next version shares the unchanged rules' objects with the first (the validation and the key of those are remembered).
    const bad = renderIngressConfig(ConfigDocument.parse(first.content), [...routes(200), { hostname: 'bad.example.com', service: 'http://localhost:1/path', project: 'beta' }]);
    expect(bad.issues.map((issue) => [issue.kind, issue.hostname])).toEqual([['service-has-path', 'bad.example.com']]);
    const changed = renderIngressConfig(ConfigDocument.parse(first.content), [...routes(199), { hostname: 'app199.example.com', service: 'http://localhost:9999', project: 'alpha' }]);
    expect(changed.issues).toEqual([]);
    const keyOf = (text: string): string => ConfigDocument.parse(text).semanticKey();
    expect(keyOf(changed.content)).not.toBe(keyOf(first.content));
    expect(keyOf(renderIngressConfig(ConfigDocument.parse(changed.content), routes(200)).content)).toBe(keyOf(first.content));
    // Comments and layout are not what cloudflared sees; a fresh parse keys the same as the made document.
    expect(keyOf(`# a comment\n${first.content}`)).toBe(keyOf(first.content));
    expect(ConfigDocument.parseFresh(first.content).semanticKey()).toBe(keyOf(first.content));
  });
});
