import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyRecord,
  COMMENT_LIMIT,
  formatOwnershipComment,
  ownershipTags,
  parseOwnershipComment,
  parseOwnershipTags,
} from '../../../src/cloudflare/ownership-marker.ts';
import { TunnelManagerError } from '../../../src/errors.ts';

const TARGET = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b.cfargotunnel.com';
const projectName = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,62}$/);

describe('ownership marker', () => {
  it('fits the Free plan comment limit on one line and parses back to its owner, for every valid project name', () => {
    fc.assert(
      fc.property(projectName, (owner) => {
        const comment = formatOwnershipComment(owner);
        expect(comment.length).toBeLessThanOrEqual(COMMENT_LIMIT);
        expect(comment).not.toMatch(/[\r\n]/);
        expect(parseOwnershipComment(comment)).toBe(owner);
      }),
    );
  });

  it('the longest project name still fits in 100 characters', () => {
    expect(formatOwnershipComment('a'.repeat(63)).length).toBeLessThanOrEqual(100);
  });

  it('is found inside a comment a human added words to, but not inside a longer word', () => {
    expect(parseOwnershipComment('note: tunnel-manager:owner=consilio keep')).toBe('consilio');
    expect(parseOwnershipComment('xtunnel-manager:owner=consilio')).toBeNull();
  });

  it('gives no owner for foreign comments, empty ones, or markers naming different owners', () => {
    expect(parseOwnershipComment(null)).toBeNull();
    expect(parseOwnershipComment('website, managed by hand')).toBeNull();
    expect(parseOwnershipComment('tunnel-manager:owner=odin tunnel-manager:owner=consilio')).toBeNull();
    expect(parseOwnershipComment('tunnel-manager:owner=Consilio')).toBeNull();
  });

  it('refuses owners that cannot be written safely (newline, upper case, too long)', () => {
    for (const owner of ['con\nsilio', 'Consilio', 'a'.repeat(64), '', '-x']) {
      expect(() => formatOwnershipComment(owner)).toThrowError(TunnelManagerError);
    }
    expect(() => formatOwnershipComment('bad owner')).toThrowError(
      expect.objectContaining({ code: 'INPUT_INVALID', fix: expect.stringMatching(/lowercase/) }),
    );
  });

  it('adds an owner tag only where the plan allows tags', () => {
    expect(ownershipTags('consilio', 'free')).toEqual([]);
    expect(ownershipTags('consilio', null)).toEqual([]);
    expect(ownershipTags('consilio', 'pro')).toEqual(['tunnel-manager-owner:consilio']);
    expect(parseOwnershipTags(['team:ops', 'tunnel-manager-owner:consilio'])).toBe('consilio');
    expect(parseOwnershipTags(['tunnel-manager-owner:a', 'tunnel-manager-owner:b'])).toBeNull();
  });

  it('calls a record ours only when it is marked and points at our tunnel', () => {
    const marked = { type: 'CNAME', content: TARGET, comment: formatOwnershipComment('consilio'), tags: [] };
    expect(classifyRecord(marked, TARGET)).toEqual({ kind: 'ours', owner: 'consilio' });
    expect(classifyRecord({ ...marked, content: 'other-tunnel.cfargotunnel.com' }, TARGET)).toEqual({ kind: 'marked-elsewhere', owner: 'consilio' });
    expect(classifyRecord({ ...marked, comment: null }, TARGET)).toEqual({ kind: 'foreign' });
    expect(classifyRecord({ ...marked, comment: null, tags: ['tunnel-manager-owner:odin'] }, TARGET)).toEqual({ kind: 'ours', owner: 'odin' });
    expect(classifyRecord({ type: 'A', content: '192.0.2.1', comment: formatOwnershipComment('odin'), tags: [] }, TARGET).kind).toBe('marked-elsewhere');
  });
});
