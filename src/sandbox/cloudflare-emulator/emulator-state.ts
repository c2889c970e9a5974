/**
 * The emulator's world: accounts, zones, DNS records and tunnel configurations, as plain JSON-able data.
 * The server keeps one of these in memory (and optionally in a JSON file); handlers read and change it.
 */

/** Cloudflare's `plan.legacy_id` values. Only `free` limits comments to 100 characters and forbids tags. */
export type ZonePlan = 'free' | 'pro' | 'business' | 'enterprise';

export interface EmulatedAccount {
  id: string;
  name: string;
}

export interface EmulatedZone {
  id: string;
  name: string;
  status: 'active' | 'pending' | 'initializing' | 'moved' | 'deleted' | 'deactivated';
  plan: ZonePlan;
  accountId: string;
  createdOn: string;
}

export const RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'NS', 'CAA', 'SRV'] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

export interface EmulatedRecord {
  id: string;
  zoneId: string;
  name: string;
  type: RecordType;
  content: string;
  proxied: boolean;
  /** 1 means "automatic". */
  ttl: number;
  comment: string | null;
  tags: string[];
  createdOn: string;
  modifiedOn: string;
}

export interface EmulatedIngressRule {
  hostname?: string;
  path?: string;
  service: string;
  originRequest?: Record<string, unknown>;
}

export interface EmulatedTunnel {
  id: string;
  accountId: string;
  name: string;
  /** `cloudflare` when the configuration is managed through the API, `local` when by a config.yml. */
  source: 'local' | 'cloudflare';
  version: number;
  config: { ingress: EmulatedIngressRule[]; originRequest?: Record<string, unknown>; 'warp-routing'?: { enabled: boolean } } | null;
  createdAt: string;
  /**
   * The tunnel's secret (base64 of 32 bytes), as in the credentials file `cloudflared tunnel create` writes: the
   * sandbox edge checks it when cloudflared registers. Absent in state files written before the edge checked it.
   */
  secret?: string;
}

export interface EmulatorState {
  accounts: EmulatedAccount[];
  zones: EmulatedZone[];
  records: EmulatedRecord[];
  tunnels: EmulatedTunnel[];
}

/** A deep copy, so callers (tests comparing before/after, the admin endpoint) never alias the live state. */
export function cloneState(state: EmulatorState): EmulatorState {
  return structuredClone(state);
}

/** Every plan but `free` is a paid plan. */
export function isPaidPlan(plan: ZonePlan): boolean {
  return plan !== 'free';
}

/** Cloudflare's documented comment limits: 100 characters on Free, 500 on paid plans. */
export function commentLimitFor(plan: ZonePlan): number {
  return isPaidPlan(plan) ? 500 : 100;
}
