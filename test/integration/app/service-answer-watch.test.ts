import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/app/actors/event-bus.ts';
import { createLogger } from '../../../src/app/config/logger.ts';
import { startAnswerWatch } from '../../../src/app/schedules/origin-answer-watch.ts';
import type { ConnectivityReport } from '../../../src/docker/connectivity-check.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { EventsRepository } from '../../../src/store/events-repository.ts';
import { RoutesRepository } from '../../../src/store/routes-repository.ts';

/**
 * The publish-ahead watch over a real SQLite ledger: the owner hears once that the service still does not answer,
 * once that it answers, and the ledger keeps both moments (a restart tells nobody twice).
 */
const dir = mkdtempSync(join(tmpdir(), 'tm-answer-watch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const report = (ok: boolean): ConnectivityReport => ({
  ok, target: 'http://localhost:3101', method: 'host', vantage: 'from the host', steps: [{ step: 'tcp', ok, latencyMs: 1, detail: '' }],
  httpStatus: ok ? 200 : null, latencyMs: ok ? 1 : null, latencyResolutionMs: 1, error: ok ? null : 'ECONNREFUSED',
});

describe('the publish-ahead watch', () => {
  it('tells the owner once that the service is late, once that it answers, and then stops checking the route', async () => {
    const { db } = openDatabase(join(dir, 'state.db'));
    const routes = new RoutesRepository(db);
    const events = new EventsRepository(db);
    const bus = new EventBus(events);
    let clock = 1_000_000;
    routes.insert({
      hostname: 'late.153.se', zoneId: 'z', zoneName: '153.se', project: 'consilio', targetPort: 3101, service: 'http://localhost:3101',
      targetReason: 'r', path: null, originRequest: null, dnsRecordId: 'rec', dnsCreated: true, status: 'active', source: 'request',
      expiresAt: null, awaitingServiceSince: clock, at: clock,
    });
    let answering = false;
    const checked: string[] = [];
    const options = {
      routes, bus, intervalMs: 3_600_000, noticeAfterMs: 60_000, logger: createLogger({ level: 'silent' }), now: () => clock,
      check: async (target: string) => { checked.push(target); return report(answering); },
    };
    const watch = startAnswerWatch(options);
    const kinds = () => events.since(0, 100).map((e) => e.kind);

    await watch.runOnce(); // within the notice time: nothing to say
    expect(kinds()).toEqual([]);
    clock += 61_000;
    await watch.runOnce();
    await watch.runOnce();
    expect(kinds()).toEqual(['route.service_not_answering']);
    expect(routes.find('late.153.se')?.awaitingServiceNoticedAt).toBe(clock);
    watch.stop();

    // A new watch (a restart) finds the notice in the ledger and does not repeat it.
    const again = startAnswerWatch(options);
    clock += 61_000;
    await again.runOnce();
    expect(kinds()).toEqual(['route.service_not_answering']);

    answering = true;
    await again.runOnce();
    expect(kinds()).toEqual(['route.service_not_answering', 'route.service_answering']);
    expect(events.since(0, 100)[1]).toMatchObject({ project: 'consilio', data: { hostname: 'late.153.se', httpStatus: 200, waitedMs: 122_000 } });
    expect(routes.find('late.153.se')).toMatchObject({ awaitingServiceSince: null, awaitingServiceNoticedAt: null });
    const before = checked.length;
    await again.runOnce();
    expect(checked.length).toBe(before);
    again.stop();
    db.close();
  });
});
