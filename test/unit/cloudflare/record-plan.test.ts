import { describe, expect, it } from 'vitest';
import type { DnsRecord } from '../../../src/cloudflare/cloudflare-types.ts';
import { formatOwnershipComment } from '../../../src/cloudflare/ownership-marker.ts';
import { planDeleteCname, planEnsureCname } from '../../../src/cloudflare/record-plan.ts';

const TARGET = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b.cfargotunnel.com';

function record(fields: Partial<DnsRecord>): DnsRecord {
  return { id: 'r1', zoneId: 'z', name: 'app.153.se', type: 'CNAME', content: TARGET, proxied: true, ttl: 1, comment: null, tags: [], ...fields };
}

const ours = (owner: string, fields: Partial<DnsRecord> = {}) => record({ comment: formatOwnershipComment(owner), ...fields });
const ensure = (existing: DnsRecord[], owner = 'consilio') => planEnsureCname({ hostname: 'app.153.se', owner, tunnelTarget: TARGET, existing });
const remove = (existing: DnsRecord[], owner = 'consilio', adoptedRecordId?: string) =>
  planDeleteCname({ hostname: 'app.153.se', owner, tunnelTarget: TARGET, existing, ...(adoptedRecordId === undefined ? {} : { adoptedRecordId }) });

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

  it('compares names case-insensitively', () => {
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
