import { describe, expect, it } from 'vitest';
import { DenialAudit } from '../../../src/mcp/denial-audit.ts';
import type { AuditRow } from '../../../src/store/audit-repository.ts';

describe('denial audit', () => {
  it('writes the first denial at once and the repeats of a window as one row with their number', () => {
    const rows: Omit<AuditRow, 'id'>[] = [];
    const denials = new DenialAudit((row) => rows.push(row), 3_600_000);
    for (let i = 0; i < 500; i += 1) denials.deny('unauthenticated', 'UNAUTHENTICATED', '10.0.0.1');
    denials.deny('unauthenticated', 'UNAUTHENTICATED', '10.0.0.2');
    denials.deny('unauthenticated', 'FORBIDDEN', '10.0.0.1', { origin: 'http://evil.example' });
    expect(rows.map((row) => [row.target, row.errorCode, row.details])).toEqual([
      ['10.0.0.1', 'UNAUTHENTICATED', {}],
      ['10.0.0.2', 'UNAUTHENTICATED', {}],
      ['10.0.0.1', 'FORBIDDEN', { origin: 'http://evil.example' }],
    ]);
    denials.flush();
    expect(rows.slice(3).map((row) => [row.target, row.errorCode, row.details])).toEqual([['10.0.0.1', 'UNAUTHENTICATED', { repeated: 499, windowSeconds: 3600 }]]);
    // A new window: the next denial from the same place is written at once again.
    denials.deny('unauthenticated', 'UNAUTHENTICATED', '10.0.0.1');
    expect(rows).toHaveLength(5);
    denials.close();
    expect(rows).toHaveLength(5);
  });

  it('counts beyond 1,000 sources under one key, so memory and rows stay bounded', () => {
    const rows: Omit<AuditRow, 'id'>[] = [];
    const denials = new DenialAudit((row) => rows.push(row), 3_600_000);
    for (let i = 0; i < 5000; i += 1) denials.deny('unauthenticated', 'UNAUTHENTICATED', `10.0.${Math.floor(i / 256)}.${i % 256}`);
    expect(rows).toHaveLength(1001);
    expect(rows.at(-1)?.target).toBe('*');
    denials.close();
    expect(rows.at(-1)?.details).toEqual({ repeated: 3999, windowSeconds: 3600 });
  });
});
