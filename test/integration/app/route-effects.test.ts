import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, toPromise, type AnyActorLogic } from 'xstate';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { routeMachine, type RouteRequest, type StepInput } from '../../../machines/route.machine.ts';
import { EventBus } from '../../../src/app/actors/event-bus.ts';
import { provideRouteEffects } from '../../../src/app/effects/route-effects.ts';
import type { CloudflareProvider } from '../../../src/cloudflare/cloudflare-provider.ts';
import { ZoneDirectory } from '../../../src/cloudflare/zones.ts';
import type { EventRow } from '../../../src/store/events-repository.ts';
import { AuditRepository } from '../../../src/store/audit-repository.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { DomainsRepository } from '../../../src/store/domains-repository.ts';
import { EventsRepository } from '../../../src/store/events-repository.ts';
import { RoutesRepository } from '../../../src/store/routes-repository.ts';
import { FIXTURE_TUNNEL_TARGET, FIXTURE_ZONES } from '../../../src/sandbox/cloudflare-emulator/index.ts';
import { failureOf, startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

/**
 * The route saga's steps one at a time (src/app/effects/route-effects.ts): reserve, DNS, activate and the
 * compensations, each run as the machine runs it (its actor logic, with a StepInput), on a real SQLite file and the
 * real SDK against the Cloudflare emulator on 127.0.0.1. A failure here names the step. The ingress steps need the
 * ingress actor and cloudflared: the e2e files (saga-failures, saga-crash) cover them.
 */

const ZONE = FIXTURE_ZONES.main;
let dir: string;
let db: Database;
let sandbox: CloudflareSandbox;
let provider: CloudflareProvider;
let routes: RoutesRepository;
let events: EventRow[];
let effects: ReturnType<typeof provideRouteEffects>;
const now = 1_000_000;

function setUp(routesPerProject = 0): void {
  const bus = new EventBus(new EventsRepository(db));
  events = [];
  bus.subscribe((event) => events.push(event));
  effects = provideRouteEffects(routeMachine, {
    routes,
    domains: new DomainsRepository(db),
    provider,
    ingress: () => {
      throw new Error('no ingress step runs in this file');
    },
    tunnelReady: async () => undefined,
    bus,
    audit: new AuditRepository(db),
    routesPerProject,
    deleteRetryDelaysMs: [60_000],
    now: () => now,
  });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tm-route-effects-'));
  db = openDatabase(join(dir, 'tm.db')).db;
  sandbox = await startCloudflareSandbox();
  provider = sandbox.provider();
  routes = new RoutesRepository(db);
  await new ZoneDirectory({ listZones: () => provider.listZones(), domains: new DomainsRepository(db), defaultZone: ZONE.name }).refresh();
  sandbox.emulator.reset();
  setUp();
});
afterEach(async () => {
  db.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs one step as the machine does: its actor logic, started with the step's input, until it settles. */
function runStep<T = unknown>(name: string, input: StepInput): Promise<T> {
  const logic = effects.implementations.actors[name] as AnyActorLogic;
  const actor = createActor(logic, { input });
  actor.start();
  return toPromise(actor) as Promise<T>;
}

function request(hostname: string, fields: Partial<RouteRequest> = {}): RouteRequest {
  return {
    requestId: `req-${hostname}`,
    kind: 'provision',
    project: 'consilio',
    hostname,
    zoneId: ZONE.id,
    zoneName: ZONE.name,
    targetPort: 3100,
    service: 'http://localhost:3100',
    targetReason: 'a test',
    originRequest: null,
    expiresAt: null,
    ...fields,
  };
}

const input = (req: RouteRequest, fields: Partial<StepInput> = {}): StepInput => ({
  request: req,
  dnsRecordId: null,
  dnsCreated: false,
  previous: null,
  error: null,
  compensationErrors: [],
  ...fields,
});

const recordsNamed = (name: string) => sandbox.emulator.state().records.filter((record) => record.name === name);
const dnsRequests = () => sandbox.emulator.requests().filter((r) => r.path.includes('dns_records')).map((r) => r.method);

describe('reserveRoute', () => {
  it('inserts the pending row this saga holds; a re-run (after a restart) finds its own reservation', async () => {
    const req = request('a.153.se');
    await runStep('reserveRoute', input(req));
    await runStep('reserveRoute', input(req));
    expect(routes.find('a.153.se')).toMatchObject({ status: 'pending', requestId: req.requestId, project: 'consilio', dnsCreated: false });
  });

  it("refuses a name another saga holds with HOSTNAME_TAKEN, leaving that saga's row", async () => {
    await runStep('reserveRoute', input(request('b.153.se')));
    const error = await failureOf(runStep('reserveRoute', input(request('b.153.se', { requestId: 'other', project: 'odin' }))));
    expect(error).toMatchObject({ code: 'HOSTNAME_TAKEN', details: { owner: 'consilio', status: 'pending' } });
    expect(routes.find('b.153.se')?.requestId).toBe('req-b.153.se');
  });

  it('counts the quota in the same transaction: ROUTE_QUOTA_EXCEEDED and no row', async () => {
    setUp(1);
    await runStep('reserveRoute', input(request('one.153.se')));
    const error = await failureOf(runStep('reserveRoute', input(request('two.153.se'))));
    expect(error.code).toBe('ROUTE_QUOTA_EXCEEDED');
    expect(routes.find('two.153.se')).toBeUndefined();
  });
});

describe('ensureDnsRecord', () => {
  it("carries out the request's plan: one POST, no second look at the name; the row knows it created the record", async () => {
    const req = request('plan.153.se', { dnsPlan: { action: 'create' } });
    await runStep('reserveRoute', input(req));
    const out = await runStep<{ recordId: string; created: boolean }>('ensureDnsRecord', input(req));
    expect(dnsRequests()).toEqual(['POST']);
    expect(out.created).toBe(true);
    expect(recordsNamed('plan.153.se')).toEqual([expect.objectContaining({ id: out.recordId, content: FIXTURE_TUNNEL_TARGET, comment: 'tunnel-manager:owner=consilio' })]);
    expect(routes.find('plan.153.se')).toMatchObject({ dnsRecordId: out.recordId, dnsCreated: true });
  });

  it('plans by itself when the saga carries no plan (one started by an older version): look, then create', async () => {
    const req = request('old.153.se');
    await runStep('reserveRoute', input(req));
    await runStep('ensureDnsRecord', input(req));
    expect(dnsRequests()).toEqual(['GET', 'POST']);
  });

  it('a plan the persisted state garbled is not trusted: the step plans afresh', async () => {
    const req = request('garbled.153.se', { dnsPlan: { action: 'reuse', record: { id: 42 } } });
    await runStep('reserveRoute', input(req));
    await runStep('ensureDnsRecord', input(req));
    expect(dnsRequests()).toEqual(['GET', 'POST']);
    expect(recordsNamed('garbled.153.se')).toHaveLength(1);
  });

  it('reuses a record of ours that was there before, and never counts it as created (a rollback keeps it)', async () => {
    const earlier = await provider.ensureCname({ zoneId: ZONE.id, hostname: 'kept.153.se', owner: 'consilio' });
    const plan = await provider.planCname({ zoneId: ZONE.id, hostname: 'kept.153.se', owner: 'consilio' });
    const req = request('kept.153.se', { dnsPlan: plan });
    await runStep('reserveRoute', input(req));
    sandbox.emulator.reset();
    const out = await runStep<{ recordId: string; created: boolean }>('ensureDnsRecord', input(req));
    expect(out).toEqual({ recordId: earlier.record.id, created: false });
    expect(sandbox.emulator.requests()).toEqual([]);
    expect(routes.find('kept.153.se')?.dnsCreated).toBe(false);
  });

  it('a foreign record made after the plan (the race) is refused with RECORD_EXISTS and left as it is', async () => {
    const req = request('race.153.se', { dnsPlan: { action: 'create' } });
    await runStep('reserveRoute', input(req));
    const otherProvider = sandbox.provider({ tunnelId: '0b0b0b0b-1111-4222-8333-944444444444' });
    const theirs = await otherProvider.ensureCname({ zoneId: ZONE.id, hostname: 'race.153.se', owner: 'odin' });
    const error = await failureOf(runStep('ensureDnsRecord', input(req)));
    expect(error.code).toBe('RECORD_EXISTS');
    expect(recordsNamed('race.153.se')).toEqual([expect.objectContaining({ id: theirs.record.id })]);
    // The create made nothing (Cloudflare refused it), so the undo gives the name back: no row left `deleting` for a
    // retry schedule that would try, and be refused, to delete a record that was never ours.
    expect(routes.find('race.153.se')?.dnsCreated).toBe(false);
    await runStep('releaseReservation', input(req, { error: { code: error.code, message: error.message, fix: error.fix, details: error.details } }));
    expect(routes.find('race.153.se')).toBeUndefined();
  });
});

describe('activateRoute', () => {
  it('marks the row active and tells its owner route.created with the record', async () => {
    const req = request('live.153.se', { dnsPlan: { action: 'create' } });
    await runStep('reserveRoute', input(req));
    const { recordId } = await runStep<{ recordId: string }>('ensureDnsRecord', input(req));
    await runStep('activateRoute', input(req));
    expect(routes.find('live.153.se')?.status).toBe('active');
    expect(events.find((event) => event.kind === 'route.created')).toMatchObject({ project: 'consilio', data: { hostname: 'live.153.se', dnsRecordId: recordId } });
  });
});

describe('the compensations of a failed provision', () => {
  it('deleteDnsRecord deletes the record this saga made, then releaseReservation gives the name back', async () => {
    const req = request('undo.153.se', { dnsPlan: { action: 'create' } });
    await runStep('reserveRoute', input(req));
    const { recordId } = await runStep<{ recordId: string }>('ensureDnsRecord', input(req));
    await runStep('deleteDnsRecord', input(req, { dnsRecordId: recordId, dnsCreated: true }));
    expect(recordsNamed('undo.153.se')).toEqual([]);
    expect(routes.find('undo.153.se')).toMatchObject({ dnsRecordId: null, dnsCreated: false });
    await runStep('releaseReservation', input(req));
    expect(routes.find('undo.153.se')).toBeUndefined();
  });

  it('releaseReservation keeps the row `deleting`, free for the retry schedule, when the record could not be deleted', async () => {
    const req = request('stuck.153.se', { dnsPlan: { action: 'create' } });
    await runStep('reserveRoute', input(req));
    await runStep('ensureDnsRecord', input(req));
    const failure = { code: 'CLOUDFLARE_UNAVAILABLE' as const, message: 'down', fix: 'wait', details: {} };
    await runStep('releaseReservation', input(req, { compensationErrors: [failure] }));
    expect(routes.find('stuck.153.se')).toMatchObject({ status: 'deleting', requestId: null, deleteAttempts: 1, nextRetryAt: now + 60_000 });
    expect(routes.find('stuck.153.se')?.lastError).toContain('could not delete its DNS record');
    expect(events.find((event) => event.kind === 'route.delete_failed')).toMatchObject({ project: 'consilio' });
    expect(recordsNamed('stuck.153.se')).toHaveLength(1);
  });
});

describe('the removal steps', () => {
  async function publish(hostname: string): Promise<{ req: RouteRequest; recordId: string }> {
    const req = request(hostname, { dnsPlan: { action: 'create' } });
    await runStep('reserveRoute', input(req));
    const { recordId } = await runStep<{ recordId: string }>('ensureDnsRecord', input(req));
    await runStep('activateRoute', input(req));
    return { req, recordId };
  }

  it('markDeleting holds the row for the removal and answers its record and the row before; forgetRoute removes it and tells', async () => {
    const { recordId } = await publish('bye.153.se');
    const removal = request('bye.153.se', { kind: 'deprovision', requestId: 'del-1' });
    const marked = await runStep('markDeleting', input(removal));
    expect(marked).toEqual({ recordId, created: true, previous: { status: 'active', service: null } });
    expect(routes.find('bye.153.se')).toMatchObject({ status: 'deleting', requestId: 'del-1' });
    await runStep('deleteDnsRecord', input(removal, { dnsRecordId: recordId }));
    await runStep('forgetRoute', input(removal, { dnsRecordId: recordId }));
    expect(routes.find('bye.153.se')).toBeUndefined();
    expect(recordsNamed('bye.153.se')).toEqual([]);
    expect(events.map((event) => event.kind)).toContain('route.deleted');
  });

  it('markDeleting refuses a name the ledger does not hold: ROUTE_NOT_FOUND', async () => {
    const error = await failureOf(runStep('markDeleting', input(request('ghost.153.se', { kind: 'deprovision' }))));
    expect(error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('keepForRetry leaves the row `deleting` without a saga, with the next attempt planned and the owner told', async () => {
    await publish('retry.153.se');
    const removal = request('retry.153.se', { kind: 'deprovision', requestId: 'del-2' });
    await runStep('markDeleting', input(removal));
    const error = { code: 'CLOUDFLARE_UNAVAILABLE' as const, message: 'Cloudflare is down', fix: 'wait', details: {} };
    await runStep('keepForRetry', input(removal, { error }));
    expect(routes.find('retry.153.se')).toMatchObject({ status: 'deleting', requestId: null, service: null, deleteAttempts: 1, nextRetryAt: now + 60_000 });
    expect(events.find((event) => event.kind === 'route.delete_failed')).toMatchObject({ project: 'consilio', data: { attempts: 1 } });
  });
});
