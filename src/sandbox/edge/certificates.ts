import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The sandbox edge's TLS identity. cloudflared dials the edge with TLS, checks the certificate against the one CA its
 * `--cacert` names, and wants the name `h2.cftunnel.com` (HTTP/2) or `quic.cftunnel.com` in the subjectAltName. So the
 * sandbox makes its own CA (kept in its data directory: a cloudflared started by an earlier manager trusts the same
 * file) and, at each start, a server certificate it signs.
 *
 * Node can make and use keys but not certificates, so this writes the few DER structures of an X.509 v3 certificate
 * (RFC 5280) itself: ECDSA P-256 keys, signed with SHA-256.
 */

export const EDGE_SERVER_NAMES = ['h2.cftunnel.com', 'quic.cftunnel.com'];

// --- DER, the subset a certificate needs -----------------------------------------------------------------------

function length(size: number): Buffer {
  if (size < 0x80) return Buffer.from([size]);
  const bytes: number[] = [];
  for (let rest = size; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const explicit = (tagNumber: number, content: Buffer): Buffer => tlv(0xa0 | tagNumber, content);
const octetString = (content: Buffer): Buffer => tlv(0x04, content);
const bitString = (content: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), content]));
const booleanTrue = (): Buffer => tlv(0x01, Buffer.from([0xff]));

/** A private key as PKCS#8 PEM text (Node answers a string for the PEM format). */
function pkcs8Pem(key: KeyObject): string {
  const exported = key.export({ type: 'pkcs8', format: 'pem' });
  return typeof exported === 'string' ? exported : exported.toString('utf8');
}

/** A non-negative INTEGER from big-endian bytes (a leading 0 keeps it positive). */
function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function objectIdentifier(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) chunk.unshift(0x80 | (value & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

function name(commonName: string, organization: string): Buffer {
  const attribute = (oid: string, value: string): Buffer => tlv(0x31, sequence(objectIdentifier(oid), tlv(0x0c, Buffer.from(value, 'utf8'))));
  return sequence(attribute('2.5.4.10', organization), attribute('2.5.4.3', commonName));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [booleanTrue()] : []), octetString(value));
}

const ECDSA_WITH_SHA256 = sequence(objectIdentifier('1.2.840.10045.4.3.2'));

function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest();
}

interface CertificateSpec {
  subject: Buffer;
  issuer: Buffer;
  publicKey: KeyObject;
  signingKey: KeyObject;
  issuerKeyId: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

function certificate(spec: CertificateSpec): Buffer {
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))),
    integer(Buffer.concat([Buffer.from([0x40]), randomBytes(15)])),
    ECDSA_WITH_SHA256,
    spec.issuer,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spec.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...spec.extensions, extension('2.5.29.35', false, sequence(tlv(0x80, spec.issuerKeyId))))),
  );
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, spec.signingKey)));
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

const DAY = 86_400_000;

export interface CertificateAuthority {
  certPem: string;
  key: KeyObject;
}

/** A new CA for the sandbox edge, valid ten years. */
export function createCertificateAuthority(now = new Date()): CertificateAuthority {
  const { privateKey, publicKey } = newKeyPair();
  const subject = name('Tunnel Manager sandbox edge CA', 'Tunnel Manager sandbox');
  const keyId = keyIdentifier(publicKey);
  const der = certificate({
    subject,
    issuer: subject,
    publicKey,
    signingKey: privateKey,
    issuerKeyId: keyId,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 3650 * DAY),
    extensions: [
      // basicConstraints: CA, critical; keyUsage: keyCertSign + cRLSign, critical; subjectKeyIdentifier.
      extension('2.5.29.19', true, sequence(booleanTrue())),
      extension('2.5.29.15', true, bitString(Buffer.from([0x06]), 1)),
      extension('2.5.29.14', false, octetString(keyId)),
    ],
  });
  return { certPem: pem('CERTIFICATE', der), key: privateKey };
}

export interface ServerCertificate {
  certPem: string;
  keyPem: string;
}

/** A server certificate for `names` (DNS names in the subjectAltName), signed by `ca`, valid 90 days. */
export function issueServerCertificate(ca: CertificateAuthority, names: readonly string[] = EDGE_SERVER_NAMES, now = new Date()): ServerCertificate {
  const { privateKey, publicKey } = newKeyPair();
  const der = certificate({
    subject: name(names[0] ?? 'localhost', 'Tunnel Manager sandbox'),
    issuer: name('Tunnel Manager sandbox edge CA', 'Tunnel Manager sandbox'),
    publicKey,
    signingKey: ca.key,
    issuerKeyId: keyIdentifier(createPublicKey(ca.key)),
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 90 * DAY),
    extensions: [
      extension('2.5.29.19', true, sequence()),
      // keyUsage: digitalSignature, critical; extKeyUsage: serverAuth; subjectAltName: the DNS names.
      extension('2.5.29.15', true, bitString(Buffer.from([0x80]), 7)),
      extension('2.5.29.37', false, sequence(objectIdentifier('1.3.6.1.5.5.7.3.1'))),
      extension('2.5.29.17', false, sequence(...names.map((dns) => tlv(0x82, Buffer.from(dns, 'ascii'))))),
    ],
  });
  return { certPem: pem('CERTIFICATE', der), keyPem: pkcs8Pem(privateKey) };
}

/**
 * The sandbox's CA, kept in `dir` (`edge-ca.pem`, the file cloudflared's `--cacert` names, and `edge-ca.key`,
 * 0600): made on first use, read afterwards.
 */
export function loadOrCreateCertificateAuthority(dir: string): CertificateAuthority & { certPath: string } {
  const certPath = join(dir, 'edge-ca.pem');
  const keyPath = join(dir, 'edge-ca.key');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { certPem: readFileSync(certPath, 'utf8'), key: createPrivateKey(readFileSync(keyPath, 'utf8')), certPath };
  }
  mkdirSync(dir, { recursive: true });
  const ca = createCertificateAuthority();
  const writeAtomically = (path: string, content: string, mode: number): void => {
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, content, { mode });
    chmodSync(temporary, mode);
    renameSync(temporary, path);
  };
  writeAtomically(keyPath, pkcs8Pem(ca.key), 0o600);
  writeAtomically(certPath, ca.certPem, 0o644);
  return { ...ca, certPath };
}
