import { describe, expect, it } from 'vitest';
import type { DnsRecord } from '../../../src/cloudflare/cloudflare-types.ts';
import { formatOwnershipComment } from '../../../src/cloudflare/ownership-marker.ts';
import { planDeleteCname, planEnsureCname } from '../../../src/cloudflare/record-plan.ts';
import { toHostname } from '../../../src/hostname.ts';

const TARGET = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b.cfargotunnel.com';

/** A record as the provider answers it: its name made a Hostname where it entered. */
function record(fields: Partial<Omit<DnsRecord, 'name'>> & { name?: string }): DnsRecord {
  const { name, ...rest } = fields;
  return { id: 'r1', zoneId: 'z', type: 'CNAME', content: TARGET, proxied: true, ttl: 1, comment: null, tags: [], ...rest, name: toHostname(name ?? 'app.153.se') };
}

const ours = (owner: string, fields: Parameters<typeof record>[0] = {}) => record({ comment: formatOwnershipComment(owner), ...fields });
const ensure = (existing: DnsRecord[], owner = 'consilio') => planEnsureCname({ hostname: toHostname('app.153.se'), owner, tunnelTarget: TARGET, existing });
const remove = (existing: DnsRecord[], owner = 'consilio', adoptedRecordId?: string) =>
  planDeleteCname({ hostname: toHostname('app.153.se'), owner, tunnelTarget: TARGET, existing, ...(adoptedRecordId === undefined ? {} : { adoptedRecordId }) });

describe('planEnsureCname', () => {
  it('creates when nothing has the name (records of other names do not count)', () => {
    expect(ensure([])).toEqual({ action: 'create' });
    expect(ensure([record({ name: 'other.153.se' })])).toEqual({ action: 'create' });
  });

  it('reuses our own record for the same owner, and repairs it when it lost its proxy', () => {
    expect(ensure([ours('consilio')])).toMatchObject({ action: 'reuse' });
    expect(ensure([ours('consilio', { proxied: false })])).toMatchObject({ action: 'repair' });
  });

  it('refuses a foreign record of any type, naming it', () => {
    const foreignA = record({ type: 'A', content: '192.0.2.1' });
    expect(ensure([foreignA])).toEqual({ action: 'refuse', reason: 'foreign', conflicting: [foreignA] });
    expect(ensure([record({})])).toMatchObject({ action: 'refuse', reason: 'foreign' });
    expect(ensure([record({ type: 'TXT', content: 'hello' })])).toMatchObject({ action: 'refuse', reason: 'foreign' });
  });

  it("refuses another project's record and says whose it is", () => {
    expect(ensure([ours('odin')])).toMatchObject({ action: 'refuse', reason: 'other-owner', owner: 'odin' });
  });

  it('refuses a record marked for us that points at another tunnel', () => {
    // Our marker on a record pointing at another tunnel: another Tunnel Manager's (one per tunnel), not ours, not foreign.
    expect(ensure([ours('consilio', { content: 'other.cfargotunnel.com' })])).toMatchObject({ action: 'refuse', reason: 'other-tunnel', owner: 'consilio', tunnelTarget: 'other.cfargotunnel.com' });
  });

  it('compares names as Hostnames: a record named in capitals by Cloudflare is the same name', () => {
    expect(ensure([ours('consilio', { name: 'APP.153.se' })])).toMatchObject({ action: 'reuse' });
  });
});

describe('planDeleteCname', () => {
  it('deletes only our record for this owner', () => {
    expect(remove([ours('consilio')])).toMatchObject({ action: 'delete', record: { id: 'r1' } });
    expect(remove([ours('odin')])).toMatchObject({ action: 'refuse', reason: 'other-owner', owner: 'odin' });
    expect(remove([record({ type: 'A', content: '192.0.2.1' })])).toMatchObject({ action: 'refuse', reason: 'foreign' });
  });

  it('says absent when there is nothing to delete', () => {
    expect(remove([])).toEqual({ action: 'absent' });
  });

  it('deletes an unmarked adopted record only by the id the ledger holds, and only if it points at our tunnel', () => {
    expect(remove([record({ id: 'adopted-1' })], 'meta-supervisor', 'adopted-1')).toMatchObject({ action: 'delete' });
    expect(remove([record({ id: 'adopted-1' })], 'meta-supervisor', 'another-id')).toMatchObject({ action: 'refuse' });
    expect(remove([record({ id: 'adopted-1', content: 'elsewhere.example.net' })], 'meta-supervisor', 'adopted-1')).toMatchObject({ action: 'refuse' });
    expect(remove([record({ id: 'adopted-1' })], 'meta-supervisor')).toMatchObject({ action: 'refuse', reason: 'foreign' });
  });
});

describe('the plan as a table: what exists under the name, who asks → the change', () => {
  const foreignA = record({ type: 'A', content: '192.0.2.1' });
  const unmarkedCname = record({});
  const otherTunnel = ours('consilio', { content: 'other.cfargotunnel.com' });
  const cases: { exists: string; records: DnsRecord[]; ensure: string; remove: string }[] = [
    { exists: 'nothing', records: [], ensure: 'create', remove: 'absent' },
    { exists: 'another name only', records: [record({ name: 'other.153.se' })], ensure: 'create', remove: 'absent' },
    { exists: 'ours, proxied', records: [ours('consilio')], ensure: 'reuse', remove: 'delete' },
    { exists: 'ours, proxy off', records: [ours('consilio', { proxied: false })], ensure: 'repair', remove: 'delete' },
    { exists: "another project's", records: [ours('odin')], ensure: 'refuse other-owner', remove: 'refuse other-owner' },
    { exists: "another tunnel's", records: [otherTunnel], ensure: 'refuse other-tunnel', remove: 'refuse other-tunnel' },
    { exists: 'a foreign A record', records: [foreignA], ensure: 'refuse foreign', remove: 'refuse foreign' },
    { exists: 'an unmarked CNAME to our tunnel', records: [unmarkedCname], ensure: 'refuse foreign', remove: 'refuse foreign' },
    { exists: 'ours and a foreign TXT', records: [ours('consilio'), record({ id: 'r2', type: 'TXT', content: 'v=spf1' })], ensure: 'refuse foreign', remove: 'delete' },
  ];
  const said = (plan: { action: string; reason?: string }) => (plan.action === 'refuse' ? `refuse ${plan.reason}` : plan.action);

  it.each(cases)('$exists: ensure → $ensure, delete → $remove (asked by consilio)', ({ records, ensure: ensured, remove: removed }) => {
    expect(said(ensure(records))).toBe(ensured);
    expect(said(remove(records))).toBe(removed);
  });
});
