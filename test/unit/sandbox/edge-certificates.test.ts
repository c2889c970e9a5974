import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueServerCertificate, loadOrCreateCertificateAuthority } from '../../../src/sandbox/edge/certificates.ts';
import { tempDir } from '../../helpers/standin-cloudflared.ts';

/** What cloudflared checks of the edge's certificate: signed by the one CA of --cacert, h2.cftunnel.com in the SAN, in date. */
describe('the sandbox edge\'s certificates', () => {
  it('issues a server certificate for the edge names, signed by the sandbox CA', () => {
    const ca = createCertificateAuthority();
    const leaf = issueServerCertificate(ca);
    const caCert = new X509Certificate(ca.certPem);
    const leafCert = new X509Certificate(leaf.certPem);
    expect(caCert.ca).toBe(true);
    expect(leafCert.ca).toBe(false);
    expect(leafCert.checkIssued(caCert)).toBe(true);
    expect(leafCert.verify(caCert.publicKey)).toBe(true);
    expect(leafCert.checkHost('h2.cftunnel.com')).toBe('h2.cftunnel.com');
    expect(leafCert.checkHost('quic.cftunnel.com')).toBe('quic.cftunnel.com');
    expect(leafCert.checkHost('example.com')).toBeUndefined();
    expect(new Date(leafCert.validTo).getTime()).toBeGreaterThan(Date.now() + 30 * 86_400_000);
    expect(leafCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('passes a TLS client\'s verification with only the CA as root, and fails it for another name', async () => {
    const ca = createCertificateAuthority();
    const leaf = issueServerCertificate(ca);
    const server = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (socket) => socket.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const connect = (servername: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: ca.certPem, ecdhCurve: 'P-256' }, () => {
          resolve(socket.authorized ? 'authorized' : String(socket.authorizationError));
          socket.destroy();
        });
        socket.on('error', (error) => reject(error));
      });
    expect(await connect('h2.cftunnel.com')).toBe('authorized');
    await expect(connect('other.example.com')).rejects.toThrow(/altnames/);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('keeps the CA in the data directory (key 0600) and reads the same one back', () => {
    const dir = tempDir('edge-ca');
    try {
      const first = loadOrCreateCertificateAuthority(dir.path);
      expect(statSync(`${dir.path}/edge-ca.key`).mode & 0o777).toBe(0o600);
      const second = loadOrCreateCertificateAuthority(dir.path);
      expect(second.certPem).toBe(first.certPem);
      expect(second.certPath).toBe(`${dir.path}/edge-ca.pem`);
      expect(new X509Certificate(issueServerCertificate(second).certPem).checkIssued(new X509Certificate(first.certPem))).toBe(true);
    } finally {
      dir.remove();
    }
  });
});
