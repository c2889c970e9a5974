import { describe, expect, it } from 'vitest';
import { hostnameArgument, isHostname, parseHostname, sameHostname, toHostname } from '../../../src/hostname.ts';

/** The Hostname value (src/hostname.ts): made once where a name enters, compared as it is afterwards. */
describe('Hostname', () => {
  it.each([
    ['App.153.SE', 'app.153.se'],
    ['app.153.se', 'app.153.se'],
    ['*.153.se', '*.153.se'],
    ['_dmarc.153.se', '_dmarc.153.se'],
  ])('toHostname(%j) is %j', (raw, expected) => {
    expect(toHostname(raw)).toBe(expected);
    expect(isHostname(toHostname(raw))).toBe(true);
  });

  it.each([
    ['', 'empty'],
    [' app.153.se', 'white space'],
    ['app.153.se\n', 'white space'],
    ['app .153.se', 'white space'],
    ['a'.repeat(254), 'more than DNS allows'],
  ])('refuses %j (%s): toHostname throws, parseHostname answers null', (raw, why) => {
    expect(() => toHostname(raw)).toThrowError(why);
    expect(parseHostname(raw)).toBeNull();
  });

  it('keeps a trailing dot (a tool never accepted `153.se.` as a zone) and compares case-insensitively', () => {
    expect(toHostname('153.SE.')).toBe('153.se.');
    expect(sameHostname('Tunnel.CFARGOTUNNEL.com', 'tunnel.cfargotunnel.com')).toBe(true);
  });

  it('as a tool argument: normalised on the way in, and a name that is none is the argument error', () => {
    expect(hostnameArgument.parse('153.SE')).toBe('153.se');
    const refused = hostnameArgument.safeParse('  ');
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toMatch(/DNS name/);
  });
});
