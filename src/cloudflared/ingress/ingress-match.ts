/**
 * Which ingress rule cloudflared sends a request to: the first rule whose hostname and path both match.
 *
 * - The request host loses its port (`app.example.com:443` → `app.example.com`) and compares case-insensitively.
 * - A rule with no hostname or `*` matches every host; `*.example.com` matches any name ending in
 *   `.example.com` (one or more labels), not `example.com` itself.
 * - A rule with a path matches when its regex finds a match anywhere in the request path (unanchored).
 * - When nothing matches, the last rule (the catch-all in a valid file) answers.
 */
import type { IngressRule } from '../../ingress-model.ts';
import { compileIngressPath } from './ingress-path-regex.ts';

function stripPort(host: string): string {
  const trimmed = host.trim().replace(/\.$/, '');
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(trimmed);
  if (bracketed) return bracketed[1] ?? trimmed;
  const colons = trimmed.split(':').length - 1;
  return colons === 1 ? trimmed.slice(0, trimmed.indexOf(':')) : trimmed;
}

export function hostnameMatches(ruleHostname: string | undefined, requestHost: string): boolean {
  const pattern = (ruleHostname ?? '').toLowerCase();
  if (pattern === '' || pattern === '*') return true;
  const host = stripPort(requestHost).toLowerCase();
  if (pattern === host) return true;
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1);
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return false;
}

function pathMatches(rulePath: string | undefined, requestPath: string): boolean {
  if (rulePath === undefined || rulePath === '') return true;
  try {
    return compileIngressPath(rulePath).test(requestPath);
  } catch {
    return false;
  }
}

/** The index of the rule that serves `host` + `path`; the last index when none matches; -1 for an empty list. */
export function matchIngressRule(rules: readonly IngressRule[], host: string, path: string): number {
  const requestPath = path === '' ? '/' : path;
  for (let index = 0; index < rules.length; index += 1) {
    const rule = rules[index];
    if (rule && hostnameMatches(rule.hostname, host) && pathMatches(rule.path, requestPath)) return index;
  }
  return rules.length - 1;
}
