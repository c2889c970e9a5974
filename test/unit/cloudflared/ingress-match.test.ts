import { describe, expect, it } from 'vitest';
import type { IngressRule } from '../../../src/ingress-model.ts';
import { matchIngressRule } from '../../../src/cloudflared/ingress/ingress-validation.ts';

const RULES: IngressRule[] = [
  { hostname: 'app.example.com', path: '^/api/', service: 'http://localhost:1' },
  { hostname: 'app.example.com', service: 'http://localhost:2' },
  { hostname: '*.dev.example.com', service: 'http://localhost:3' },
  { hostname: 'docs.example.com', path: '(?i)\\.pdf$', service: 'http://localhost:4' },
  { service: 'http_status:404' },
];

describe('matchIngressRule (cloudflared matching)', () => {
  it.each([
    ['app.example.com', '/api/users', 0],
    ['app.example.com', '/', 1],
    ['app.example.com', '/v1/api/', 1],
    ['APP.Example.COM', '/api/x', 0],
    ['app.example.com:443', '/api/x', 0],
    ['a.dev.example.com', '/', 2],
    ['a.b.dev.example.com', '/', 2],
    ['dev.example.com', '/', 4],
    ['baddev.example.com', '/', 4],
    ['docs.example.com', '/guide/Manual.PDF', 3],
    ['docs.example.com', '/guide/', 4],
    ['other.example.com', '/', 4],
  ] as const)('%s%s → rule %i', (host, path, expected) => {
    expect(matchIngressRule(RULES, host, path)).toBe(expected);
  });

  it('an empty path matches like "/"', () => {
    expect(matchIngressRule([{ hostname: 'a.example.com', path: '^/$', service: 'http://x:1' }, { service: 'http_status:404' }], 'a.example.com', '')).toBe(0);
  });

  it('returns -1 for an empty list', () => {
    expect(matchIngressRule([], 'a.example.com', '/')).toBe(-1);
  });
});
