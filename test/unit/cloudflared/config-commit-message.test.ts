import { describe, expect, it } from 'vitest';
import { commitMessage as fromSummaries, summarizeText } from '../../../src/cloudflared/ingress/config-commit-message.ts';
import { renderIngressConfig, type LedgerRule } from '../../../src/cloudflared/ingress/ingress-render.ts';
import { ConfigDocument } from '../../../src/cloudflared/ingress/config-document.ts';

/** The commit message names what a version changes, read from the two files (the ingress cycle test covers the wiring). */

const HAND = `tunnel: t
ingress:
  - hostname: chat.153.se
    service: http://localhost:3000
  - hostname: code.153.se
    service: http://localhost:8080
  - service: http_status:404
`;

const rule = (hostname: string, project: string, port: number): LedgerRule => ({ hostname, project, service: `http://localhost:${port}` });
const render = (base: string, ledger: LedgerRule[]): string => renderIngressConfig(ConfigDocument.parse(base), ledger).content;
const commitMessage = (before: string | null, after: string, options?: Parameters<typeof fromSummaries>[2]) => fromSummaries(summarizeText(before), summarizeText(after), options);

describe('commitMessage', () => {
  it('the first version names every rule it holds, hand-written ones as such', () => {
    expect(commitMessage(null, HAND, { label: 'version found on disk when tunnel-manager first started' }).split('\n')[0]).toBe(
      'ingress: version found on disk when tunnel-manager first started: add chat.153.se, code.153.se, catch-all (hand-written)',
    );
  });

  it('a changed target and a moved owner are named with before and after', () => {
    const before = render(HAND, [rule('app.153.se', 'consilio', 3100)]);
    expect(commitMessage(before, render(HAND, [rule('app.153.se', 'consilio', 3101)]))).toBe(
      'ingress: change app.153.se (project consilio: http://localhost:3100 → http://localhost:3101)',
    );
    expect(commitMessage(before, render(HAND, [rule('app.153.se', 'odin', 3100)]))).toBe(
      'ingress: change app.153.se (project consilio → project odin: http://localhost:3100, options changed)',
    );
  });

  it('a version that changes no rule says so, or names the settings it changes', () => {
    expect(commitMessage(HAND, `# a comment\n${HAND}`)).toBe('ingress: no ingress rule changed');
    expect(commitMessage(HAND, HAND.replace('tunnel: t', 'tunnel: u'), { label: 'hand edit of config.yml' })).toBe('ingress: hand edit of config.yml: settings tunnel changed');
  });
});
