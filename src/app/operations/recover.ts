import { existsSync, readFileSync } from 'node:fs';
import { adoptExistingRecords, type AdoptionOptions, type AdoptionReport } from '../effects/adoption.ts';
import type { CloudflareProvider } from '../../cloudflare/cloudflare-provider.ts';
import { ZoneDirectory } from '../../cloudflare/zones.ts';
import { managedRulesIn, type ManagedRuleOnDisk } from '../../cloudflared/ingress/ingress-render.ts';
import { toErrorShape } from '../../errors.ts';
import { PortManager, type ProjectRange } from '../../ports/port-manager.ts';
import { AuditRepository } from '../../store/audit-repository.ts';
import { openDatabase, type Database } from '../../store/database.ts';
import { DomainsRepository } from '../../store/domains-repository.ts';
import { PortsRepository } from '../../store/ports-repository.ts';
import { RoutesRepository } from '../../store/routes-repository.ts';
import { cloudflareProviderFor } from '../config/cloudflare-access.ts';
import type { Config } from '../config/config.ts';

/**
 * Rebuilding the route ledger from what is still true in the world: the ownership markers on the DNS records in
 * Cloudflare and the managed rules in config.yml. The same adoption the first zone refresh of `serve` runs on an
 * empty database (src/cloudflare/adoption.ts), offered as the operator command `tunnel-manager recover`:
 *
 * - a record with our marker whose managed rule is in config.yml comes back `active`, for the project the marker
 *   names, with the rule's target, so the route keeps serving;
 * - a record with our marker and no rule, or one without a marker, is adopted (owner: the marker's, else
 *   `cloudflare.adoptOwner`), as a first start would;
 * - a hostname already in the ledger is never touched: recovery only adds the rows that are missing;
 * - a record whose marker names a project that is not configured is not taken in (reported), and a route whose project
 *   cannot hold its port (another's, out of its range) comes back adopted, without its target: nothing the records and
 *   config.yml say is served unless a configured project could have published it;
 * - the port a recovered route targets is allocated to its project again (the allocations were in the lost database
 *   too), so the route is not reported as an orphan whose port nobody holds.
 *
 * The whole run is one transaction: it all lands or none of it does, and `dryRun` rolls it back after reporting.
 */

export interface PortRestored {
  hostname: string;
  project: string;
  port: number;
  /** `allocated`: given back to the project; `held`: the project already had it; else why not, in words. */
  outcome: 'allocated' | 'held' | string;
}

export interface RouteRecovery {
  adoption: AdoptionReport;
  ports: PortRestored[];
}

/**
 * Adoption with the lost ledger's managed rules, then the ports of the recovered routes allocated again. What the
 * first zone refresh of `serve` runs, and what `recover` runs inside its transaction.
 */
export async function recoverRoutes(options: Omit<AdoptionOptions, 'claimPort'> & { ports: PortManager }): Promise<RouteRecovery> {
  const ports: PortRestored[] = [];
  // A route comes back serving only when its project holds its port (given back now if free and in its range).
  const claimPort = (owner: string, port: number, hostname: string): string | null => {
    if (options.ports.list(owner).some((allocation) => allocation.port === port)) {
      ports.push({ hostname, project: owner, port, outcome: 'held' });
      return null;
    }
    try {
      options.ports.allocate(owner, `recovered with ${hostname}`, port);
      ports.push({ hostname, project: owner, port, outcome: 'allocated' });
      return null;
    } catch (error) {
      const why = toErrorShape(error).message;
      ports.push({ hostname, project: owner, port, outcome: why });
      return why;
    }
  };
  const adoption = await adoptExistingRecords({ ...options, claimPort });
  return { adoption, ports };
}

/** The managed rules config.yml holds now (none when there is no file, or it does not parse). */
export function managedRulesOnDisk(configPath: string): Map<string, ManagedRuleOnDisk> {
  return managedRulesIn(existsSync(configPath) ? readFileSync(configPath, 'utf8') : null);
}

export interface RecoveredRoute {
  hostname: string;
  zone: string;
  project: string;
  /** The ingress target the route serves (null for an adopted record: its rule, if any, is hand-written). */
  target: string | null;
  status: 'active' | 'adopted';
  /**
   * `recovered`: our marker and our managed rule (back as it was, serving); `marker`: our marker without a rule;
   * `unmarked`: a record pointing at the tunnel that predates us.
   */
  basis: 'recovered' | 'marker' | 'unmarked';
}

export interface RecoveryReport {
  dryRun: boolean;
  databasePath: string;
  /** Rows in the ledger before the run. */
  ledgerBefore: number;
  recovered: RecoveredRoute[];
  /** The ports of the recovered routes, allocated to their projects again (or why not). */
  ports: PortRestored[];
  /** Records found and left alone (already in the ledger), with the reason. */
  skipped: { hostname: string; reason: string }[];
  /** Records not taken into the ledger (their marker names no configured project), or taken without their target (their project cannot hold the port). */
  refused: { hostname: string; reason: string }[];
  /** Managed rules of config.yml for hostnames still not in the ledger (no record carries our marker): dropped at the next render. */
  rulesWithoutRecord: string[];
  scannedZones: string[];
  durationMs: number;
}

export interface RecoverLedgerOptions {
  db: Database;
  databasePath: string;
  provider: Pick<CloudflareProvider, 'listZones' | 'findTunnelCnames' | 'ownership'>;
  defaultZone: string;
  adoptOwner: string;
  /** The projects and their port ranges (config.projects). */
  projects: ProjectRange[];
  managedRules: ReadonlyMap<string, ManagedRuleOnDisk>;
  dryRun?: boolean;
  now?: () => number;
}

/** Runs the recovery on an open database (nobody else may write it meanwhile: the service must be stopped). */
export async function recoverLedger(options: RecoverLedgerOptions): Promise<RecoveryReport> {
  const now = options.now ?? Date.now;
  const started = performance.now();
  const { db } = options;
  const routes = new RoutesRepository(db);
  const domains = new DomainsRepository(db);
  const ledgerBefore = routes.list().length;
  // A manual transaction, because the Cloudflare reads in between are asynchronous (better-sqlite3's transaction()
  // is synchronous); the repositories' own transactions nest in it as savepoints.
  db.exec('BEGIN IMMEDIATE');
  let committed = false;
  try {
    const zones = new ZoneDirectory({ listZones: () => options.provider.listZones(), domains, defaultZone: options.defaultZone, now });
    const refreshed = await zones.refresh();
    const { adoption, ports } = await recoverRoutes({
      provider: options.provider,
      routes,
      ports: new PortManager(new PortsRepository(db), options.projects, now),
      zones: refreshed.zones,
      adoptOwner: options.adoptOwner,
      projects: new Set(options.projects.map((project) => project.name)),
      managedRules: options.managedRules,
      now,
    });
    const recovered: RecoveredRoute[] = adoption.adopted.map((adopted) => {
      const row = routes.find(adopted.hostname);
      return {
        hostname: adopted.hostname,
        zone: adopted.zoneName,
        project: adopted.owner,
        target: row?.service ?? null,
        status: adopted.basis === 'recovered' ? 'active' : 'adopted',
        basis: adopted.basis,
      };
    });
    const report: RecoveryReport = {
      dryRun: options.dryRun === true,
      databasePath: options.databasePath,
      ledgerBefore,
      recovered,
      ports,
      skipped: adoption.skipped,
      refused: adoption.refused,
      rulesWithoutRecord: [...options.managedRules.keys()].filter((hostname) => routes.find(hostname) === undefined).sort(),
      scannedZones: adoption.scannedZones,
      durationMs: 0,
    };
    if (!report.dryRun) {
      new AuditRepository(db).record({
        ts: now(),
        principal: 'cli',
        action: 'recover',
        outcome: 'ok',
        details: { recovered: recovered.length, active: recovered.filter((route) => route.status === 'active').length, ledgerBefore, zones: adoption.scannedZones },
      });
      db.exec('COMMIT');
      committed = true;
    }
    report.durationMs = Math.round(performance.now() - started);
    return report;
  } finally {
    if (!committed) db.exec('ROLLBACK');
  }
}

/**
 * `tunnel-manager recover`: opens (or creates) the database of `config`, reaches Cloudflare as `serve` would (the
 * sandbox's emulator on the data directory's account state, or the configured API with its token) and recovers.
 * A dry run on a data directory without a database works on a throwaway one and creates nothing.
 */
export async function recoverFromConfig(config: Config, options: { dryRun?: boolean } = {}): Promise<RecoveryReport> {
  const dryRun = options.dryRun === true;
  const sandbox = config.cloudflare.apiBaseUrl ? null : await (await import('../config/sandbox-mode.ts')).startSandboxEmulator(config);
  try {
    const provider = cloudflareProviderFor(config, { sandbox: sandbox ? { apiBaseUrl: sandbox.apiBaseUrl, apiToken: sandbox.token } : null });
    const inMemory = dryRun && !existsSync(config.databasePath);
    const { db } = openDatabase(inMemory ? ':memory:' : config.databasePath);
    try {
      return await recoverLedger({
        db,
        databasePath: config.databasePath,
        provider,
        defaultZone: config.tunnel.defaultZone,
        adoptOwner: config.cloudflare.adoptOwner,
        projects: config.projects,
        managedRules: managedRulesOnDisk(config.cloudflared.configPath),
        dryRun,
      });
    } finally {
      db.close();
    }
  } finally {
    await sandbox?.close();
  }
}

/** The report as the terminal shows it. */
export function formatRecovery(report: RecoveryReport): string {
  const lines: string[] = [];
  const verb = report.dryRun ? 'would recover' : 'recovered';
  const active = report.recovered.filter((route) => route.status === 'active').length;
  lines.push(
    `${verb} ${report.recovered.length} route(s) into ${report.databasePath} (${active} active with their targets, ${report.recovered.length - active} adopted) ` +
      `from ${report.scannedZones.length} zone(s) in ${report.durationMs} ms; the ledger had ${report.ledgerBefore} row(s) before` +
      (report.dryRun ? '; nothing written (dry run)' : ''),
  );
  const why: Record<RecoveredRoute['basis'], string> = {
    recovered: 'our marker and our rule in config.yml',
    marker: 'our marker, no rule in config.yml',
    unmarked: 'points at the tunnel, no marker',
  };
  const width = Math.max(8, ...report.recovered.map((route) => route.hostname.length));
  const projectWidth = Math.max(7, ...report.recovered.map((route) => route.project.length));
  for (const route of report.recovered) {
    lines.push(`  ${route.hostname.padEnd(width)}  ${route.project.padEnd(projectWidth)}  ${(route.target ?? '-').padEnd(24)}  ${route.status} (${why[route.basis]})`);
  }
  const allocated = report.ports.filter((port) => port.outcome === 'allocated');
  if (allocated.length > 0) lines.push(`ports allocated again: ${allocated.map((port) => `${port.port} to ${port.project}`).join(', ')}`);
  for (const port of report.ports.filter((entry) => entry.outcome !== 'allocated' && entry.outcome !== 'held')) {
    lines.push(`port ${port.port} of ${port.hostname} not allocated again: ${port.outcome}`);
  }
  if (report.skipped.length > 0) lines.push(`left alone: ${report.skipped.length} record(s) already in the ledger`);
  for (const refused of report.refused) lines.push(`not served: ${refused.hostname}: ${refused.reason}`);
  if (report.rulesWithoutRecord.length > 0) {
    lines.push(
      `not recovered: ${report.rulesWithoutRecord.length} managed rule(s) in config.yml with no record carrying our marker (the next start renders them out): ` +
        report.rulesWithoutRecord.join(', '),
    );
  }
  if (!report.dryRun && report.recovered.length > 0) lines.push('Start the service (systemctl start tunnel-manager, or tunnel-manager serve): the recovered routes keep serving.');
  return lines.join('\n');
}
