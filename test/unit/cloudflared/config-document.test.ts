import { describe, expect, it } from 'vitest';
import { ConfigDocument } from '../../../src/cloudflared/ingress/config-document.ts';
import { TunnelManagerError } from '../../../src/errors.ts';
import { REAL_WORLD_CONFIG } from './fixtures.ts';

describe('ConfigDocument', () => {
  it('round-trips a real-world config byte for byte', () => {
    const doc = ConfigDocument.parse(REAL_WORLD_CONFIG);
    expect(doc.toString()).toBe(REAL_WORLD_CONFIG);
    expect(doc.withIngressChunks(doc.rules().map((chunk) => chunk.text))).toBe(REAL_WORLD_CONFIG);
  });

  it('models known keys and keeps every other key in extra', () => {
    const model = ConfigDocument.parse(REAL_WORLD_CONFIG).model();
    expect(model.tunnel).toBe('6ff42ae2-765d-4adf-8112-31c55c1551ef');
    expect(model['credentials-file']).toContain('.json');
    expect(model.originRequest).toEqual({ connectTimeout: '30s', noTLSVerify: false, keepAliveConnections: 100 });
    expect(model.extra).toEqual({ metrics: '127.0.0.1:20241', loglevel: 'info', 'warp-routing': { enabled: true }, retries: 5 });
    expect(model.ingress).toHaveLength(4);
    expect(model.ingress[1]).toEqual({ hostname: '*.preview.example.com', path: '^/api/.*$', service: 'https://localhost:8443', originRequest: { noTLSVerify: true } });
  });

  it('cuts the ingress list into one chunk per rule, comments and blank lines included', () => {
    const rules = ConfigDocument.parse(REAL_WORLD_CONFIG).rules();
    expect(rules.map((chunk) => chunk.commentLines)).toEqual([['Grafana, set up by hand in 2023'], [], ['static files over a socket'], []]);
    expect(rules[1]?.text.startsWith('\n  - hostname: "*.preview.example.com"   # previews')).toBe(true);
    expect(rules[3]?.text).toBe('  - service: http_status:404   # everything else\n');
    expect(rules.map((chunk) => chunk.text).join('')).toBe(REAL_WORLD_CONFIG.slice(REAL_WORLD_CONFIG.indexOf('  # Grafana'), REAL_WORLD_CONFIG.indexOf('# end of ingress')));
  });

  it('ends a rule whose value closes with an indented comment at that comment: the next rule keeps its first line and its comments', () => {
    // yaml's range for the first item runs on into the second item's indentation; cutting there split the second
    // rule's first line off into the first chunk, and removing the first rule left `service:` with no list item.
    const text = 'ingress:\n  - hostname: a.example.com\n    service: http://localhost:1\n    # note under a\n\n  # above b\n  - hostname: b.example.com   # inline\n    service: http://localhost:2\n  - service: http_status:404\n';
    const doc = ConfigDocument.parse(text);
    expect(doc.rules().map((chunk) => chunk.text)).toEqual([
      '  - hostname: a.example.com\n    service: http://localhost:1\n    # note under a\n',
      '\n  # above b\n  - hostname: b.example.com   # inline\n    service: http://localhost:2\n',
      '  - service: http_status:404\n',
    ]);
    expect(doc.rules()[1]?.commentLines).toEqual(['above b']);
    const withoutA = ConfigDocument.parse(doc.withIngressChunks(doc.rules().slice(1).map((chunk) => chunk.text)));
    expect(withoutA.model().ingress.map((rule) => rule.hostname ?? rule.service)).toEqual(['b.example.com', 'http_status:404']);
  });

  it('keeps the order of rules when one is removed, and everything else byte for byte', () => {
    const doc = ConfigDocument.parse(REAL_WORLD_CONFIG);
    const texts = doc.rules().map((chunk) => chunk.text);
    const without = doc.withIngressChunks([texts[0] as string, texts[2] as string, texts[3] as string]);
    expect(without).toBe(REAL_WORLD_CONFIG.replace(texts[1] as string, ''));
  });

  it('handles CRLF files and a missing final newline', () => {
    const crlf = 'tunnel: t\r\ningress:\r\n  - hostname: a.example.com\r\n    service: http://x:1\r\n  - service: http_status:404';
    const doc = ConfigDocument.parse(crlf);
    expect(doc.layout.eol).toBe('\r\n');
    expect(doc.withIngressChunks(doc.rules().map((chunk) => chunk.text))).toBe(crlf);
    expect(doc.rules()).toHaveLength(2);
  });

  it('detects the indentation of the list', () => {
    expect(ConfigDocument.parse('ingress:\n- service: http_status:404\n').layout.dashIndent).toBe(0);
    expect(ConfigDocument.parse('ingress:\n    - service: http_status:404\n').layout.dashIndent).toBe(4);
  });

  it('turns a flow-style or missing ingress list into a block list', () => {
    const flow = ConfigDocument.parse('tunnel: t # id\ningress: [{service: "http_status:404"}]\n');
    expect(flow.rules()).toHaveLength(1);
    expect(flow.withIngressChunks(['  - service: http_status:404\n'])).toBe('tunnel: t # id\n\ningress:\n  - service: http_status:404\n');
    const none = ConfigDocument.parse('tunnel: t\n');
    expect(none.rules()).toEqual([]);
    expect(none.withIngressChunks(['  - service: http_status:404\n'])).toBe('tunnel: t\n\ningress:\n  - service: http_status:404\n');
  });

  it('refuses broken YAML with the line and a fix', () => {
    const error = (() => {
      try {
        ConfigDocument.parse('tunnel: t\ningress:\n  - service: "unterminated\n');
      } catch (caught) {
        return caught;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(TunnelManagerError);
    expect((error as TunnelManagerError).code).toBe('INGRESS_INVALID');
    expect((error as TunnelManagerError).fix).toContain('rollback');
    expect(() => ConfigDocument.parse('tunnel: a\ntunnel: b\n')).toThrow(/duplicate|unique/i);
    expect(() => ConfigDocument.parse('- just\n- a list\n')).toThrow(/mapping/);
  });

  it('parses a text once while it is among the last ones read: the same document, immutable, a fresh model each time', () => {
    const text = REAL_WORLD_CONFIG;
    const first = ConfigDocument.parse(text);
    expect(ConfigDocument.parse(`${text}`)).toBe(first);
    // The model is a copy: a caller that changes it changes nothing for the next one.
    const model = first.model();
    model.ingress.push({ service: 'http_status:500' });
    (model.ingress[0] as { hostname?: string }).hostname = 'changed.example.com';
    expect(ConfigDocument.parse(text).model()).toEqual(first.model());
    expect(first.model().ingress).toHaveLength(model.ingress.length - 1);
    // The rules are frozen: nothing can change them in place.
    expect(() => {
      (first.rules()[0]!.rule as { service: string }).service = 'http://elsewhere:1';
    }).toThrow(TypeError);
    // Two other texts later, the first is parsed again (a fresh document with the same content).
    ConfigDocument.parse('tunnel: a\ningress:\n  - service: http_status:404\n');
    ConfigDocument.parse('tunnel: b\ningress:\n  - service: http_status:404\n');
    const again = ConfigDocument.parse(text);
    expect(again).not.toBe(first);
    expect(again.model()).toEqual(first.model());
  });
});
