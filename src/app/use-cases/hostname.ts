import { TunnelManagerError } from '../../errors.ts';
import { HOSTNAME_MAX_LENGTH, toHostname, type Hostname } from '../../hostname.ts';

/** ROUTE_NOT_FOUND: the ledger has no route of that name (`outcome`, e.g. "; nothing was changed", ends the message). */
export function routeNotFound(hostname: string, outcome = ''): TunnelManagerError {
  return new TunnelManagerError({
    code: 'ROUTE_NOT_FOUND',
    message: `There is no route ${hostname}${outcome}.`,
    fix: 'List your routes with tunnel_list_cnames, or publish this name with tunnel_request_cname.',
    details: { hostname },
  });
}

/**
 * The hostnames a project may ask for: RFC 1123 labels (a-z, 0-9, inner dashes, 1–63 characters), at most
 * 253 characters in all, no wildcard, nothing that could break out of YAML, SQL or a log line.
 */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function hostnameProblems(subdomain: string): string[] {
  const problems: string[] = [];
  if (subdomain.length === 0) return ['it is empty'];
  if (subdomain !== subdomain.trim()) problems.push('it has leading or trailing white space');
  if (/[\u0000-\u001f\u007f]/.test(subdomain)) problems.push('it contains control characters (newlines, tabs…)');
  if (subdomain.includes('*')) problems.push('wildcards are not allowed: ask for one name at a time');
  if (/[A-Z]/.test(subdomain)) problems.push('it has upper-case letters (DNS names are lower case here)');
  if (/[^\x00-\x7f]/.test(subdomain)) problems.push('it has non-ASCII characters (use the punycode form, xn--…)');
  if (problems.length > 0) return problems;
  for (const label of subdomain.split('.')) {
    if (label.length === 0) problems.push('it has an empty label (two dots in a row, or a dot at an end)');
    else if (label.length > 63) problems.push(`the label "${label.slice(0, 20)}…" is longer than 63 characters`);
    else if (!LABEL.test(label)) problems.push(`the label "${label}" may hold only a-z, 0-9 and inner dashes`);
  }
  return problems;
}

/**
 * `subdomain.domain`, validated; the error names the argument and shows a valid example. The subdomain is judged as
 * given (upper case and blanks are refused, not normalised: a project asks for exactly the name it gets).
 */
export function requestedHostname(subdomain: string, domain: string): Hostname {
  const problems = hostnameProblems(subdomain);
  const hostname = `${subdomain}.${domain}`;
  if (problems.length === 0 && hostname.length > HOSTNAME_MAX_LENGTH) problems.push(`${hostname.length} characters in all, more than DNS allows (${HOSTNAME_MAX_LENGTH})`);
  if (problems.length > 0) {
    throw new TunnelManagerError({
      code: 'HOSTNAME_INVALID',
      message: `subdomain ${JSON.stringify(subdomain.slice(0, 80))} is not a valid DNS name: ${problems.join('; ')}.`,
      fix: 'Pass `subdomain` as lower-case labels of a-z, 0-9 and inner dashes separated by dots, e.g. "app" or "api.staging".',
      details: { argument: 'subdomain', problems },
    });
  }
  return toHostname(hostname);
}
