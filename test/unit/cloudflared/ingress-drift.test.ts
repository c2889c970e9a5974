import { describe, expect, it } from 'vitest';
import { ConfigDocument } from '../../../src/cloudflared/ingress/config-document.ts';
import { detectDrift } from '../../../src/cloudflared/ingress/ingress-drift.ts';
import { renderIngressConfig, type LedgerRule } from '../../../src/cloudflared/ingress/ingress-render.ts';
import { REAL_WORLD_CONFIG } from './fixtures.ts';

const LEDGER: LedgerRule[] = [
  { hostname: 'app.example.com', service: 'http://localhost:3000', project: 'alpha', targetReason: 'host port' },
  { hostname: 'api.example.com', service: 'http://api:8080', project: 'beta', targetReason: 'shared network' },
];
const written = renderIngressConfig(ConfigDocument.parse(REAL_WORLD_CONFIG), LEDGER).content;

describe('detectDrift', () => {
  it('sees nothing when the file is what we wrote, or when there is no baseline yet', () => {
    expect(detectDrift(written, written).status).toBe('none');
    expect(detectDrift(null, written).status).toBe('none');
    expect(detectDrift(null, null).status).toBe('none');
  });

  it('reports a file we wrote that is gone', () => {
    expect(detectDrift(written, null).status).toBe('missing');
  });

  it('reports an edited managed rule with before and after', () => {
    const edited = written.replace('service: http://api:8080', 'service: http://api:9090');
    const report = detectDrift(written, edited);
    expect(report.status).toBe('drift');
    expect(report.editedManaged).toEqual([
      { hostname: 'api.example.com', path: null, before: { hostname: 'api.example.com', service: 'http://api:8080' }, after: { hostname: 'api.example.com', service: 'http://api:9090' } },
    ]);
    expect(report.addedUnmanaged).toEqual([]);
  });

  it('reports a removed managed rule with after = null', () => {
    const removed = written.replace(/  # tunnel-manager: managed rule for app\.example\.com[^\n]*\n[^\n]*\n  - hostname: app\.example\.com\n[^\n]*\n/, '');
    expect(removed).not.toContain('app.example.com');
    const report = detectDrift(written, removed);
    expect(report.editedManaged.map((edit) => [edit.hostname, edit.after])).toEqual([['app.example.com', null]]);
  });

  it('sees a new hand-written rule as unmanaged, and a comment-only edit as no rule change', () => {
    const added = written.replace('  - service: http_status:404   # everything else', '  - hostname: new.example.com\n    service: http://localhost:7000\n  - service: http_status:404   # everything else');
    const report = detectDrift(written, added);
    expect(report.status).toBe('drift');
    expect(report.editedManaged).toEqual([]);
    expect(report.addedUnmanaged).toEqual([{ index: 5, hostname: 'new.example.com', path: null }]);
    const commented = detectDrift(written, written.replace('# end of ingress', '# end of ingress (reviewed)'));
    expect(commented.editedManaged).toEqual([]);
    expect(commented.addedUnmanaged).toEqual([]);
    expect(commented.otherChanges).toBe(true);
  });

  it('does not count a removed marker comment as an edit', () => {
    const unmarked = written.replace(/  # tunnel-manager: managed rule for api\.example\.com[^\n]*\n/, '');
    expect(detectDrift(written, unmarked).editedManaged).toEqual([]);
  });

  it('calls a hand edit that cloudflared would refuse invalid, with the issues', () => {
    const broken = written.replace('  - service: http_status:404   # everything else\n', '');
    const report = detectDrift(written, broken);
    expect(report.status).toBe('invalid');
    expect(report.issues.map((issue) => issue.kind)).toContain('catch-all-not-last');
    const unparseable = detectDrift(written, 'ingress:\n  - service: "oops\n');
    expect(unparseable.status).toBe('invalid');
    expect(unparseable.parseError?.code).toBe('INGRESS_INVALID');
  });
});
