import type { Database } from 'better-sqlite3';

/** One cached Cloudflare zone (`domains`). */
export interface Domain {
  zoneId: string;
  name: string;
  status: string;
  /** The plan's legacy id (free, pro, business, enterprise), or null when unknown. */
  plan: string | null;
  accountId: string | null;
  refreshedAt: number;
}

interface DomainRow {
  zone_id: string;
  name: string;
  status: string;
  plan: string | null;
  account_id: string | null;
  refreshed_at: number;
}

function toDomain(row: DomainRow): Domain {
  return { zoneId: row.zone_id, name: row.name, status: row.status, plan: row.plan, accountId: row.account_id, refreshedAt: row.refreshed_at };
}

/** The zones cache: replaced as a whole on each refresh, read by name or id. Names compare case-insensitively. */
export class DomainsRepository {
  private readonly upsertRow;
  private readonly selectAll;
  private readonly selectByName;
  private readonly selectById;
  private readonly deleteOne;
  private readonly selectRefreshedAt;

  constructor(private readonly db: Database) {
    this.upsertRow = db.prepare(
      `INSERT INTO domains (zone_id, name, status, plan, account_id, refreshed_at)
       VALUES (@zone_id, @name, @status, @plan, @account_id, @refreshed_at)
       ON CONFLICT (zone_id) DO UPDATE SET name = excluded.name, status = excluded.status, plan = excluded.plan,
         account_id = excluded.account_id, refreshed_at = excluded.refreshed_at`,
    );
    this.selectAll = db.prepare<[], DomainRow>('SELECT * FROM domains ORDER BY name');
    this.selectByName = db.prepare<[string], DomainRow>('SELECT * FROM domains WHERE name = ?');
    this.selectById = db.prepare<[string], DomainRow>('SELECT * FROM domains WHERE zone_id = ?');
    this.deleteOne = db.prepare('DELETE FROM domains WHERE zone_id = ?');
    this.selectRefreshedAt = db.prepare<[], { at: number | null }>('SELECT MAX(refreshed_at) AS at FROM domains');
  }

  /** Makes the cache exactly `zones` (zones gone from the account are removed), in one transaction. */
  replaceAll(zones: Omit<Domain, 'refreshedAt'>[], at: number): { added: string[]; removed: string[] } {
    return this.db.transaction(() => {
      const before = new Map(this.list().map((domain) => [domain.zoneId, domain.name]));
      const keep = new Set(zones.map((zone) => zone.zoneId));
      const removed: string[] = [];
      for (const [zoneId, name] of before) {
        if (!keep.has(zoneId)) {
          this.deleteOne.run(zoneId);
          removed.push(name);
        }
      }
      for (const zone of zones) {
        this.upsertRow.run({
          zone_id: zone.zoneId,
          name: zone.name.toLowerCase(),
          status: zone.status,
          plan: zone.plan,
          account_id: zone.accountId,
          refreshed_at: at,
        });
      }
      return { added: zones.filter((zone) => !before.has(zone.zoneId)).map((zone) => zone.name.toLowerCase()), removed };
    })();
  }

  list(): Domain[] {
    return this.selectAll.all().map(toDomain);
  }

  findByName(name: string): Domain | undefined {
    const row = this.selectByName.get(name.toLowerCase());
    return row ? toDomain(row) : undefined;
  }

  findById(zoneId: string): Domain | undefined {
    const row = this.selectById.get(zoneId);
    return row ? toDomain(row) : undefined;
  }

  /** When the cache was last refreshed, or null if it never was. */
  lastRefreshedAt(): number | null {
    return this.selectRefreshedAt.get()?.at ?? null;
  }
}
