import type { Hostname } from '../hostname.ts';

/** The shapes Tunnel Manager reads from Cloudflare, reduced to what it uses. */

export interface CloudflareZone {
  id: string;
  name: string;
  status: string;
  /** The plan's `legacy_id`: free, pro, business, enterprise (null when Cloudflare did not say). */
  plan: string | null;
  accountId: string | null;
}

export interface DnsRecord {
  id: string;
  zoneId: string;
  /** Normalised where the answer enters (dns-provider.ts). */
  name: Hostname;
  type: string;
  content: string;
  proxied: boolean;
  ttl: number;
  comment: string | null;
  tags: string[];
}

/** The CNAME content every record of ours carries. */
export function tunnelTargetFor(tunnelId: string): string {
  return `${tunnelId}.cfargotunnel.com`;
}

/** Tags need a paid plan; Free zones answer 9314 (or 1004) to any tag. */
export function planAllowsTags(plan: string | null): boolean {
  return plan !== null && plan !== 'free';
}
