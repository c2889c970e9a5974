import { describe, expect, it } from 'vitest';
import { errorCode } from '../../../machines/shared.ts';
import { ERROR_CODES, environmentErrorShape, isErrorCode, toErrorShape, TunnelManagerError } from '../../../src/errors.ts';

/** The one list of error codes (machines/error-codes.ts) and the system errors turned into our own codes. */

function systemError(code: string, fields: { syscall?: string; path?: string; address?: string; port?: number } = {}): Error {
  return Object.assign(new Error(`${code}: something`), { code, ...fields });
}

describe('error codes', () => {
  it('one list for machines and src: a machine reads the code of our error, anything else is INTERNAL', () => {
    expect(ERROR_CODES).toContain('TUNNEL_NOT_RUNNING');
    expect(isErrorCode('CALL_TIMED_OUT')).toBe(true);
    expect(isErrorCode('NOT_A_CODE')).toBe(false);
    expect(errorCode(new TunnelManagerError({ code: 'CLOUDFLARE_UNAVAILABLE', message: 'down', fix: 'wait' }))).toBe('CLOUDFLARE_UNAVAILABLE');
    expect(errorCode(new Error('plain'))).toBe('INTERNAL');
    expect(errorCode({ code: 'NOT_A_CODE' })).toBe('INTERNAL');
  });
});

describe('environmentErrorShape', () => {
  it('names the address another program holds', () => {
    expect(environmentErrorShape(systemError('EADDRINUSE', { address: '127.0.0.1', port: 8080 }))).toMatchObject({
      code: 'ADDRESS_IN_USE',
      message: 'Another program already listens on 127.0.0.1:8080.',
      details: { address: '127.0.0.1:8080' },
    });
    expect(environmentErrorShape(systemError('EADDRNOTAVAIL', { address: '10.9.9.9' }))?.code).toBe('ADDRESS_NOT_AVAILABLE');
  });

  it('a permission problem names the path, or the low port, and how to get past it', () => {
    const onPath = environmentErrorShape(systemError('EACCES', { syscall: 'open', path: '/var/lib/tm' }));
    expect(onPath).toMatchObject({ code: 'PERMISSION_DENIED', message: 'Permission denied: open /var/lib/tm.', details: { path: '/var/lib/tm', syscall: 'open' } });
    expect(onPath?.fix).toContain('ls -ld /var/lib/tm');
    for (const code of ['EPERM', 'EROFS']) expect(environmentErrorShape(systemError(code))?.code).toBe('PERMISSION_DENIED');
    expect(environmentErrorShape(systemError('EACCES', { syscall: 'listen', address: '0.0.0.0', port: 80 }))?.fix).toContain('CAP_NET_BIND_SERVICE');
  });

  it('a missing path, and anything else is left to toErrorShape as INTERNAL', () => {
    expect(environmentErrorShape(systemError('ENOENT', { syscall: 'open', path: '/nope' }))).toMatchObject({ code: 'FILE_NOT_FOUND', message: 'No such file or directory: /nope.' });
    expect(environmentErrorShape(systemError('ENOTDIR'))?.code).toBe('FILE_NOT_FOUND');
    expect(environmentErrorShape(systemError('ECONNRESET'))).toBeNull();
    expect(environmentErrorShape(new Error('plain'))).toBeNull();
    expect(toErrorShape(systemError('ECONNRESET')).code).toBe('INTERNAL');
  });
});
