/**
 * A typed model of cloudflared's config file (locally managed tunnel).
 * Keys we do not model are kept as they are, in `extra`.
 */
export interface OriginRequest {
  connectTimeout?: string;
  noTLSVerify?: boolean;
  httpHostHeader?: string;
  originServerName?: string;
  http2Origin?: boolean;
  [key: string]: unknown;
}

export interface IngressRule {
  hostname?: string;
  path?: string;
  service: string;
  originRequest?: OriginRequest;
}

export interface CloudflaredConfig {
  tunnel?: string;
  'credentials-file'?: string;
  originRequest?: OriginRequest;
  ingress: IngressRule[];
  /** Every other top-level key, preserved untouched. */
  extra: Record<string, unknown>;
}

/** The classes of problems cloudflared refuses a file for (plus duplicates, which it silently shadows). */
export type IngressIssueKind =
  | 'no-rules'
  | 'catch-all-not-last'
  | 'catch-all-before-last'
  | 'bad-wildcard'
  | 'hostname-has-port'
  | 'bad-hostname'
  | 'bad-service'
  | 'service-has-path'
  | 'bad-http-status'
  | 'bad-path-regex'
  | 'duplicate-rule'
  | 'bad-origin-request';

/** One problem cloudflared would refuse the file for. `index` is the rule's position (0-based), or null for the file. */
export interface IngressIssue {
  index: number | null;
  field: 'ingress' | 'hostname' | 'path' | 'service' | 'originRequest';
  message: string;
  fix: string;
  /** Which class of problem (set by `validateIngressRules`). */
  kind?: IngressIssueKind;
  /** The rule's hostname, when it has one. */
  hostname?: string;
}
