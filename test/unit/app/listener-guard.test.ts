import { describe, expect, it } from 'vitest';
import { isLoopbackHost, listenerGuard } from '../../../src/listener-guard.ts';

describe('the Host and Origin a listener accepts (DNS rebinding)', () => {
  it('a loopback listener answers to localhost, 127.0.0.1 and [::1] on any port or none, and to nothing else', () => {
    const guard = listenerGuard('127.0.0.1');
    for (const host of ['127.0.0.1:8787', '127.0.0.1', 'localhost:1', 'LOCALHOST', '[::1]:9', '[::1]']) expect(guard.refusedHost(host), host).toBeNull();
    for (const host of ['evil.example', 'evil.example:8787', '10.0.0.5:8787', 'localhost.evil.example', '127.0.0.1@evil.example', 'localhost:notaport', undefined]) {
      expect(guard.refusedHost(host), String(host)).not.toBeNull();
    }
  });

  it('a listener on another address also answers to that address', () => {
    const guard = listenerGuard('10.0.0.5');
    expect(guard.refusedHost('10.0.0.5:9464')).toBeNull();
    expect(guard.refusedHost('localhost:9464')).toBeNull();
    expect(guard.refusedHost('10.0.0.6:9464')).toBe('10.0.0.6:9464');
    expect(listenerGuard('fd00::5').refusedHost('[fd00::5]:9464')).toBeNull();
    expect(listenerGuard('::1').refusedHost('[::1]:1')).toBeNull();
  });

  it('an Origin must be a name of the listener or a configured one; none is a program, unless the browser says cross-site', () => {
    const guard = listenerGuard('127.0.0.1', ['https://dashboard.example.com']);
    for (const origin of ['http://localhost:6274', 'http://127.0.0.1', 'https://[::1]:8443', 'https://DASHBOARD.example.com', undefined]) {
      expect(guard.refusedOrigin(origin, undefined), String(origin)).toBeNull();
    }
    for (const origin of ['http://evil.example', 'null', 'file://', 'http://localhost.evil.example', 'http://localhost:6274/path', 'ftp://localhost']) {
      expect(guard.refusedOrigin(origin, undefined), origin).toBe(origin);
    }
    expect(guard.refusedOrigin(undefined, 'cross-site')).toBe('(cross-site, no Origin)');
  });

  it('knows a loopback listen address', () => {
    expect(['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.5', '128.0.0.1'].some(isLoopbackHost)).toBe(false);
  });
});
