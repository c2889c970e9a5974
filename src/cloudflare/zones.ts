import type { CloudflareClient as Cloudflare } from './client.ts';
import type { Zone } from 'cloudflare/resources/zones/zones';
import { TunnelManagerError } from '../errors.ts';
import { toHostname } from '../hostname.ts';
import type { Domain, DomainsRepository } from '../store/domains-repository.ts';
import { collectAllPages } from './collect-pages.ts';
import type { CloudflareZone } from './cloudflare-types.ts';

/**
 * Zones: every zone of the account, all pages, cached in `domains`; which zone a hostname belongs to
 * (the longest matching zone name); and the default zone for bare names.
 */

export function toCloudflareZone(zone: Zone): CloudflareZone {
  const plan: unknown = zone.plan === undefined ? undefined : Reflect.get(zone.plan, 'legacy_id');
  return {
    id: zone.id,
    name: toHostname(zone.name),
    status: zone.status ?? 'active',
    plan: typeof plan === 'string' ? plan : null,
    accountId: zone.account?.id ?? null,
  };
}

/** Every zone of the account (`GET /zones?account.id=…`, all pages). */
export async function fetchAccountZones(client: Cloudflare, accountId: string, perPage: number): Promise<CloudflareZone[]> {
  const zones = await collectAllPages(client.zones.list({ account: { id: accountId }, per_page: perPage }));
  return zones.map(toCloudflareZone);
}

export interface ZoneDirectoryOptions {
  /** Usually the provider's `listZones`. */
  listZones: () => Promise<CloudflareZone[]>;
  domains: DomainsRepository;
  /** The configured default zone, e.g. 153.se (tunnel.defaultZone). */
  defaultZone: string;
  now?: () => number;
}

export interface ZoneRefreshReport {
  zones: Domain[];
  added: string[];
  removed: string[];
}

export class ZoneDirectory {
  private readonly now: () => number;

  constructor(private readonly options: ZoneDirectoryOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Reads every zone from Cloudflare and replaces the cache. Errors leave the cache as it was. */
  async refresh(): Promise<ZoneRefreshReport> {
    const zones = await this.options.listZones();
    const { added, removed } = this.options.domains.replaceAll(
      zones.map((zone) => ({ zoneId: zone.id, name: zone.name, status: zone.status, plan: zone.plan, accountId: zone.accountId })),
      this.now(),
    );
    return { zones: this.options.domains.list(), added, removed };
  }

  /** The cached zones. */
  list(): Domain[] {
    return this.options.domains.list();
  }

  /** True when the cache is empty or older than `maxAgeMs`. */
  isStale(maxAgeMs: number): boolean {
    const at = this.options.domains.lastRefreshedAt();
    return at === null || this.now() - at > maxAgeMs;
  }

  /** The zone a hostname lives in: the longest zone name it equals or ends with. */
  resolveZone(hostname: string): Domain {
    const name = toHostname(hostname.replace(/\.$/, ''));
    const match = this.list()
      .filter((zone) => name === zone.name || name.endsWith(`.${zone.name}`))
      .sort((a, b) => b.name.length - a.name.length)[0];
    if (match === undefined) throw this.zoneNotFound(name, `No zone of the account contains ${name}.`);
    return match;
  }

  /** The configured default zone, which must be one of the account's. */
  defaultZone(): Domain {
    const zone = this.options.domains.findByName(this.options.defaultZone);
    if (zone === undefined) {
      throw this.zoneNotFound(this.options.defaultZone, `The default zone ${this.options.defaultZone} (tunnel.defaultZone) is not a zone of the account.`);
    }
    return zone;
  }

  /** `app` → `app.<default zone>`; a name with a dot is taken as a full hostname. */
  qualify(nameOrHostname: string): string {
    const name = toHostname(nameOrHostname.replace(/\.$/, ''));
    return name.includes('.') ? name : `${name}.${this.defaultZone().name}`;
  }

  private zoneNotFound(name: string, message: string): TunnelManagerError {
    const known = this.list().map((zone) => zone.name);
    return new TunnelManagerError({
      code: 'ZONE_NOT_FOUND',
      message,
      fix:
        known.length > 0
          ? `Use a hostname in one of the account's zones: ${known.join(', ')}. If the zone was added recently, refresh the zones first.`
          : 'The zone list is empty: refresh the zones (check the Cloudflare token can read them), then retry.',
      details: { hostname: name, zones: known },
    });
  }
}
