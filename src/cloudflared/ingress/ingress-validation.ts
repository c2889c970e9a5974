/**
 * cloudflared's own rules for a config file's ingress list, checked before anything is written.
 *
 * cloudflared stops at the first problem; we report every problem at once, each naming the rule by
 * its 0-based index (and hostname) and saying how to fix it. Two checks are stricter than cloudflared:
 * a duplicate hostname + path (cloudflared accepts it, but the second rule can never match) and a
 * wildcard that is not a whole leftmost label (`*foo.example.com` is accepted by cloudflared but
 * never matches anything).
 */
import { TunnelManagerError } from '../../errors.ts';
import type { CloudflaredConfig, IngressIssue, IngressIssueKind, IngressRule } from '../../ingress-model.ts';
import { isRecord } from './config-values.ts';
import { ConfigDocument } from './config-document.ts';
import { compileIngressPath } from './ingress-path-regex.ts';

export { matchIngressRule } from './ingress-match.ts';

/** Built-in services cloudflared accepts as a `service` value besides URLs, `unix:` and `http_status:`. */
const NAMED_SERVICES = new Set(['hello_world', 'hello-world', 'helloworld', 'bastion', 'socks-proxy']);

/** `scheme://authority[rest]`, the shape cloudflared's url.Parse check needs (scheme and host present). */
const SERVICE_URL = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(.*)$/s;

/** A Go `time.Duration` string, as yaml.v3 decodes `connectTimeout: 30s`. */
const GO_DURATION = /^[+-]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$/;

/** The originRequest settings cloudflared types, by kind: which keys, what a value must be, and how to say so. */
const SETTING_KINDS: readonly { keys: readonly string[]; accepts: (value: unknown) => boolean; expected: string; example: string }[] = [
  {
    keys: ['connectTimeout', 'tlsTimeout', 'tcpKeepAlive', 'keepAliveTimeout'],
    accepts: (value) => (typeof value === 'number' && Number.isInteger(value)) || (typeof value === 'string' && (value === '0' || GO_DURATION.test(value))),
    expected: 'a duration such as 30s or 1m30s',
    example: '30s',
  },
  {
    keys: ['noHappyEyeballs', 'noTLSVerify', 'disableChunkedEncoding', 'bastionMode', 'http2Origin', 'matchSNItoHost'],
    accepts: (value) => typeof value === 'boolean',
    expected: 'true or false',
    example: 'true',
  },
  { keys: ['httpHostHeader', 'originServerName', 'caPool', 'proxyAddress', 'proxyType'], accepts: (value) => typeof value === 'string', expected: 'text', example: '"example.com"' },
  {
    keys: ['keepAliveConnections', 'proxyPort'],
    accepts: (value) => typeof value === 'number' && Number.isInteger(value) && value >= 0,
    expected: 'a whole number',
    example: '100',
  },
];

/** The text that names a rule in messages: `ingress[2] (hostname app.example.com)`. */
export function describeRule(index: number, rule: Pick<IngressRule, 'hostname' | 'path'>): string {
  const parts: string[] = [];
  if (typeof rule.hostname === 'string' && rule.hostname !== '') parts.push(`hostname ${rule.hostname}`);
  if (typeof rule.path === 'string' && rule.path !== '') parts.push(`path ${rule.path}`);
  return parts.length === 0 ? `ingress[${index}]` : `ingress[${index}] (${parts.join(', ')})`;
}

/** cloudflared's catch-all: no hostname (or `*`) and no path. */
export function isCatchAllRule(rule: Pick<IngressRule, 'hostname' | 'path'>): boolean {
  const hostname = rule.hostname ?? '';
  const path = rule.path ?? '';
  return (hostname === '' || hostname === '*') && path === '';
}

class IssueList {
  readonly issues: IngressIssue[] = [];

  add(
    index: number | null,
    rule: Pick<IngressRule, 'hostname'> | null,
    kind: IngressIssueKind,
    field: IngressIssue['field'],
    message: string,
    fix: string,
  ): void {
    const issue: IngressIssue = { index, field, kind, message, fix };
    if (rule && typeof rule.hostname === 'string' && rule.hostname !== '') issue.hostname = rule.hostname;
    this.issues.push(issue);
  }
}

function checkHostname(rule: IngressRule, index: number, name: string, issues: IssueList): void {
  const hostname = rule.hostname;
  if (hostname === undefined || hostname === '' || hostname === '*') return;
  if (typeof hostname !== 'string') {
    issues.add(index, null, 'bad-hostname', 'hostname', `${name}: hostname must be a string, got ${typeof hostname}.`, 'Write the hostname as plain text, e.g. `hostname: app.example.com`.');
    return;
  }
  if (hostname.includes('://')) {
    issues.add(index, rule, 'bad-hostname', 'hostname', `${name}: hostname "${hostname}" contains a URL scheme.`, `Write only the host name, e.g. \`hostname: ${hostname.replace(/^[^:]*:\/\//, '').replace(/[/:].*$/, '')}\`.`);
    return;
  }
  if (/[\s/?#@]/.test(hostname)) {
    issues.add(index, rule, 'bad-hostname', 'hostname', `${name}: hostname "${hostname}" contains whitespace or one of / ? # @, so no request can ever match it.`, 'Write only the host name (letters, digits, hyphens and dots), e.g. `hostname: app.example.com`; put a URL path in `path:` instead.');
    return;
  }
  if (hostname.includes(':')) {
    const bare = hostname.replace(/:[^:]*$/, '');
    issues.add(index, rule, 'hostname-has-port', 'hostname', `${name}: hostname "${hostname}" contains a port; cloudflared refuses ports in hostnames (visitors always reach the edge on 80/443).`, `Remove the port: \`hostname: ${bare}\`. The origin's port belongs in \`service\`, e.g. \`service: http://localhost:8080\`.`);
    return;
  }
  const starAt = hostname.indexOf('*');
  if (starAt !== -1) {
    const wellFormed = hostname.startsWith('*.') && hostname.lastIndexOf('*') === 0 && hostname.length > 2;
    if (!wellFormed) {
      issues.add(index, rule, 'bad-wildcard', 'hostname', `${name}: hostname "${hostname}" uses "*" somewhere other than as the whole leftmost label; cloudflared allows one wildcard, only as "*." at the start.`, 'Use a leftmost wildcard label such as `*.example.com`, or list the exact hostnames.');
    }
  }
}

function checkUrlService(service: string, rule: IngressRule, index: number, name: string, issues: IssueList): void {
  const parts = SERVICE_URL.exec(service);
  if (!parts) {
    issues.add(index, rule, 'bad-service', 'service', `${name}: service "${service}" is not a URL with a scheme and a host, nor a known service (http_status:NNN, hello_world, unix:PATH, unix+tls:PATH, bastion, socks-proxy).`, 'Write the origin as a full URL, e.g. `service: http://localhost:8080` or `service: http://web:80`.');
    return;
  }
  const authority = parts[2] ?? '';
  const path = parts[3] ?? '';
  const hostPort = authority.includes('@') ? authority.slice(authority.lastIndexOf('@') + 1) : authority;
  const ipv6 = /^\[([^\]]*)\](?::(.*))?$/.exec(hostPort);
  const host = ipv6 ? ipv6[1] ?? '' : hostPort.replace(/:[^:]*$/, '');
  const port = ipv6 ? ipv6[2] : hostPort.includes(':') ? hostPort.slice(hostPort.lastIndexOf(':') + 1) : undefined;
  if (host === '') {
    issues.add(index, rule, 'bad-service', 'service', `${name}: service "${service}" has no host.`, 'Name the origin host, e.g. `service: http://localhost:8080`.');
    return;
  }
  if (port !== undefined && !/^\d*$/.test(port)) {
    issues.add(index, rule, 'bad-service', 'service', `${name}: service "${service}" has an invalid port "${port}".`, 'Write the port as digits, e.g. `service: http://localhost:8080`.');
    return;
  }
  if (path !== '') {
    const origin = `${parts[1]}://${authority}`;
    issues.add(index, rule, 'service-has-path', 'service', `${name}: service "${service}" has a path ("${path}"); cloudflared cannot proxy to a different path on the origin, it forwards the visitor's path as is.`, `Drop the path (including a trailing "/"): \`service: ${origin}\`. To route only some paths, put a regex in the rule's \`path:\`.`);
  }
}

function checkService(rule: IngressRule, index: number, name: string, issues: IssueList): void {
  const service: unknown = rule.service;
  if (typeof service !== 'string' || service.trim() === '') {
    issues.add(index, rule, 'bad-service', 'service', `${name}: has no service.`, 'Add a service, e.g. `service: http://localhost:8080` or `service: http_status:404`.');
    return;
  }
  if (service.startsWith('unix:') || service.startsWith('unix+tls:')) {
    if (service.slice(service.indexOf(':') + 1) === '') {
      issues.add(index, rule, 'bad-service', 'service', `${name}: service "${service}" names no socket path.`, 'Give the socket path, e.g. `service: unix:/run/app.sock`.');
    }
    return;
  }
  if (service.startsWith('http_status:')) {
    const code = service.slice('http_status:'.length);
    const value = /^\d+$/.test(code) ? Number(code) : Number.NaN;
    if (!(value >= 100 && value <= 999)) {
      issues.add(index, rule, 'bad-http-status', 'service', `${name}: service "${service}" is not a valid HTTP status (cloudflared accepts 100 to 999).`, 'Use a status code such as `service: http_status:404`.');
    }
    return;
  }
  if (NAMED_SERVICES.has(service)) return;
  checkUrlService(service, rule, index, name, issues);
}

function checkPath(rule: IngressRule, index: number, name: string, issues: IssueList): void {
  const path: unknown = rule.path;
  if (path === undefined || path === '') return;
  if (typeof path !== 'string') {
    issues.add(index, rule, 'bad-path-regex', 'path', `${name}: path must be a string (a regular expression), got ${typeof path}.`, 'Quote the path regex, e.g. `path: "^/api/"`.');
    return;
  }
  try {
    compileIngressPath(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    issues.add(index, rule, 'bad-path-regex', 'path', `${name}: path "${path}" is not a regular expression cloudflared (Go RE2 syntax) can compile: ${reason}`, 'Fix the regex in RE2 syntax (no look-ahead/look-behind or back-references), e.g. `path: "^/api/"`; escape literal characters such as "." or "(" with a backslash.');
  }
}

function checkOriginRequest(value: unknown, index: number | null, rule: IngressRule | null, where: string, issues: IssueList): void {
  if (value === undefined || value === null) return;
  if (!isRecord(value)) {
    issues.add(index, rule, 'bad-origin-request', 'originRequest', `${where}: originRequest must be a mapping of settings, got ${Array.isArray(value) ? 'a list' : typeof value}.`, 'Write originRequest as indented `key: value` lines, e.g. `originRequest:\\n  connectTimeout: 30s`.');
    return;
  }
  for (const kind of SETTING_KINDS) {
    for (const key of kind.keys) {
      const setting = value[key];
      if (setting === undefined || setting === null || kind.accepts(setting)) continue;
      issues.add(index, rule, 'bad-origin-request', 'originRequest', `${where}: originRequest.${key} must be ${kind.expected}, got ${JSON.stringify(setting)}.`, `Set it like \`${key}: ${kind.example}\`, or remove it.`);
    }
  }
}

/** The key two rules collide on: the hostname (case-insensitive) and the exact path regex. */
function ruleKey(rule: IngressRule): string {
  const hostname = typeof rule.hostname === 'string' ? rule.hostname.toLowerCase() : '';
  const path = typeof rule.path === 'string' ? rule.path : '';
  return `${hostname === '*' ? '' : hostname}\u0000${path}`;
}

/**
 * Rules found free of problems of their own, by object: the frozen rules of config documents, which unchanged managed
 * rules share from one rendered version to the next, so a route change checks only the rules that changed (checking
 * all 1,000 again, and naming each, took 67 MB over 45 writes in a sampling profile: docs/performance.md, Memory with
 * use). Only frozen rules are remembered: a rule that may still change is checked every time.
 */
const soundRules = new WeakSet<IngressRule>();

/** The checks of a rule on its own (service, hostname, path, originRequest); where it stands is checked by the caller. */
function checkRuleItself(rule: IngressRule, index: number, name: string, issues: IssueList): void {
  const before = issues.issues.length;
  checkService(rule, index, name, issues);
  checkHostname(rule, index, name, issues);
  checkPath(rule, index, name, issues);
  checkOriginRequest(rule.originRequest, index, rule, name, issues);
  if (issues.issues.length === before && Object.isFrozen(rule)) soundRules.add(rule);
}

/** Where a rule stands: only the last one may and must be the catch-all, and a hostname + path is used once. */
function checkPlace(rule: IngressRule, index: number, count: number, firstIndexOf: Map<string, number>, issues: IssueList): void {
  const last = index === count - 1;
  const catchAll = isCatchAllRule(rule);
  if (last && !catchAll) {
    issues.add(index, rule, 'catch-all-not-last', 'ingress', `${describeRule(index, rule)} is the last rule but does not match every request; cloudflared needs a last rule with no hostname and no path.`, 'Append a catch-all rule at the end: `- service: http_status:404`.');
  }
  if (!last && catchAll) {
    issues.add(index, rule, 'catch-all-before-last', 'ingress', `${describeRule(index, rule)} matches every request, so the ${count - 1 - index} rule(s) after it would never be used; only the last rule may be a catch-all.`, 'Move this rule to the end of the list, or give it a `hostname:` (and/or `path:`).');
  }
  if (catchAll) return;
  const key = ruleKey(rule);
  const first = firstIndexOf.get(key);
  if (first === undefined) {
    firstIndexOf.set(key, index);
    return;
  }
  issues.add(index, rule, 'duplicate-rule', 'hostname', `${describeRule(index, rule)} repeats the hostname and path of ingress[${first}]; the first one always wins, so this rule can never match.`, `Remove one of ingress[${first}] and ingress[${index}], or give them different paths.`);
}

/** Every problem cloudflared (or a shadowed duplicate) has with this ingress list; empty when it would start. */
export function validateIngressRules(rules: IngressRule[]): IngressIssue[] {
  const issues = new IssueList();
  if (!Array.isArray(rules) || rules.length === 0) {
    issues.add(null, null, 'no-rules', 'ingress', 'The config file has no ingress rules; cloudflared refuses to start a tunnel without them.', 'Add an `ingress:` list whose last rule is the catch-all `- service: http_status:404`.');
    return issues.issues;
  }
  const firstIndexOf = new Map<string, number>();
  rules.forEach((candidate, index) => {
    const rule: IngressRule = isRecord(candidate) ? candidate : { service: '' };
    if (!soundRules.has(rule)) checkRuleItself(rule, index, describeRule(index, rule), issues);

    checkPlace(rule, index, rules.length, firstIndexOf, issues);
  });
  return issues.issues;
}

/** Checks the whole file: the ingress list plus the top-level `originRequest` defaults. */
export function validateCloudflaredConfig(config: CloudflaredConfig): IngressIssue[] {
  const issues = new IssueList();
  // A top-level originRequest that is no mapping is kept in `extra` by the model (ConfigDocument.view).
  checkOriginRequest(config.originRequest ?? config.extra.originRequest, null, null, 'top level', issues);
  return [...issues.issues, ...validateIngressRules(config.ingress)];
}

/** One line per issue, for logs and error messages. */
export function formatIngressIssues(issues: IngressIssue[]): string {
  return issues.map((issue) => `${issue.message} Fix: ${issue.fix}`).join('\n');
}

/** Parses and validates a whole config file's text: YAML errors and cloudflared's rules, as issues. */
export function validateConfigText(content: string): IngressIssue[] {
  let config: CloudflaredConfig;
  try {
    config = ConfigDocument.parse(content).view();
  } catch (error) {
    return [
      {
        index: null,
        field: 'ingress',
        message: error instanceof Error ? error.message : String(error),
        fix: error instanceof TunnelManagerError ? error.fix : 'Fix the YAML syntax at the line named.',
      },
    ];
  }
  return validateCloudflaredConfig(config);
}
