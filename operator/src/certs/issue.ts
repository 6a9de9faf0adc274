/**
 * Issuance of Airlock's CA and of the serving certificates it signs, with @peculiar/x509 on
 * node's WebCrypto (ECDSA P-256, SHA-256). No I/O: PEM in, PEM out; the time comes from the caller.
 */
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CertificateError } from './errors.ts';

const HOUR_MS = 3_600_000;
/** the CA's default lifetime: 10 years */
export const DEFAULT_CA_VALIDITY_MS = 87_600 * HOUR_MS;
/** the serving certificates' default lifetime: 2160h (90 days), as `--cert-validity` */
export const DEFAULT_LEAF_VALIDITY_MS = 2160 * HOUR_MS;
export const CA_COMMON_NAME = 'airlock-ca';

const crypto = webcrypto;
const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };

/** a certificate and its private key (PKCS#8), both PEM */
export interface Issued {
  readonly cert: string;
  readonly key: string;
}

/** the names a serving certificate carries */
export interface ServingNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

/**
 * `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local`, then `extra` (an IP
 * address goes to ipAddresses, anything else to dnsNames), without duplicates, in that order.
 */
export function serviceNames(service: string, namespace: string, extra: readonly string[] = []): ServingNames {
  if (service === '' || namespace === '') throw new CertificateError('InvalidName', 'a serving certificate needs a Service name and a namespace');
  const dnsNames = [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  const ipAddresses: string[] = [];
  for (const name of extra) {
    if (name === '') throw new CertificateError('InvalidName', 'an extra subject alternative name is empty');
    const list = isIP(name) === 0 ? dnsNames : ipAddresses;
    if (!list.includes(name)) list.push(name);
  }
  return { dnsNames, ipAddresses };
}

/**
 * How far notBefore lies in the past, so that a host whose clock runs a little behind the
 * operator's accepts a certificate at once: a minute, but never more than a tenth of the lifetime.
 */
export function backdateMs(validityMs: number): number {
  return Math.min(60_000, Math.floor(validityMs / 10));
}

function checkValidity(validityMs: number): void {
  if (!Number.isFinite(validityMs) || validityMs < 1000) throw new CertificateError('InvalidValidity', `a certificate validity must be at least one second, got ${String(validityMs)} ms`);
}

/** a positive serial of 16 random bytes whose DER encoding needs no padding byte */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** PEM as files hold it: ending with a newline, so that PEMs concatenate into a bundle */
function pemText(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return pemText(x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY'));
}

interface SigningKey {
  readonly key: webcrypto.CryptoKey;
  readonly algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
}

const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** the CA's key for signing: ours is ECDSA P-256; a CA brought by the user may also be another curve or RSA */
async function signingKey(pem: string): Promise<SigningKey> {
  let der: Buffer;
  let type: string | undefined;
  let curve: string | undefined;
  try {
    const key = createPrivateKey(pem);
    type = key.asymmetricKeyType;
    curve = key.asymmetricKeyDetails?.namedCurve;
    der = key.export({ type: 'pkcs8', format: 'der' });
  } catch (err) {
    throw new CertificateError('InvalidKey', `the CA key cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (type === 'ec' && curve !== undefined && CURVES[curve] !== undefined) {
    const key = await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: CURVES[curve] }, false, ['sign']);
    return { key, algorithm: { name: 'ECDSA', hash: 'SHA-256' } };
  }
  if (type === 'rsa') {
    const key = await crypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
    return { key, algorithm: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  throw new CertificateError('InvalidKey', `the CA key is of an unsupported kind (${type ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`}); use ECDSA or RSA`);
}

function parseCertificate(pem: string, what: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem);
  } catch (err) {
    throw new CertificateError('InvalidCertificate', `${what} is not a PEM X.509 certificate: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** a self-signed CA: `CN=airlock-ca`, basicConstraints CA (critical), keyUsage certSign+cRLSign (critical) */
export async function issueCa({ now, validityMs = DEFAULT_CA_VALIDITY_MS, commonName = CA_COMMON_NAME }: { readonly now: number; readonly validityMs?: number; readonly commonName?: string }): Promise<Issued> {
  checkValidity(validityMs);
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: [{ CN: [commonName] }],
      notBefore: new Date(now - backdateMs(validityMs)),
      notAfter: new Date(now + validityMs),
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: pemText(cert.toString('pem')), key: await privateKeyPem(keys.privateKey) };
}

/**
 * A serving certificate signed by `ca`: CN the first DNS name that ends in `.svc` (else the
 * first), the given SANs, keyUsage digitalSignature, extKeyUsage serverAuth. It never outlives
 * the CA: notAfter is the earlier of now + validity and the CA's notAfter.
 */
export async function issueServingCertificate({
  ca,
  names,
  now,
  validityMs = DEFAULT_LEAF_VALIDITY_MS,
}: {
  readonly ca: Issued;
  readonly names: ServingNames;
  readonly now: number;
  readonly validityMs?: number;
}): Promise<Issued> {
  checkValidity(validityMs);
  if (names.dnsNames.length === 0 && names.ipAddresses.length === 0) throw new CertificateError('InvalidName', 'a serving certificate needs at least one name');
  const caCert = parseCertificate(ca.cert, 'the CA certificate');
  const signer = await signingKey(ca.key);
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const commonName = names.dnsNames.find((n) => n.endsWith('.svc')) ?? names.dnsNames[0] ?? names.ipAddresses[0] ?? '';
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: [{ CN: [commonName] }],
      issuer: caCert.subjectName,
      notBefore: new Date(now - backdateMs(validityMs)),
      notAfter: new Date(Math.min(now + validityMs, caCert.notAfter.getTime())),
      publicKey: keys.publicKey,
      signingKey: signer.key,
      signingAlgorithm: signer.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([...names.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...names.ipAddresses.map((value) => ({ type: 'ip' as const, value }))]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        caKeyId === undefined ? await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto) : new x509.AuthorityKeyIdentifierExtension(caKeyId),
      ],
    },
    crypto,
  );
  return { cert: pemText(cert.toString('pem')), key: await privateKeyPem(keys.privateKey) };
}

/**
 * A cross-certificate: the CA `subject` (its name, key and key identifier) certified by the CA
 * `issuer`. Served after a serving certificate signed by `subject`, it lets a client that still
 * trusts only `issuer` (a sidecar injected before a CA rotation) verify the chain, while clients
 * that trust `subject` stop at it. It expires with the earlier of the two CAs.
 */
export async function crossSign({ subject, issuer, now }: { readonly subject: Issued; readonly issuer: Issued; readonly now: number }): Promise<string> {
  const subjectCert = parseCertificate(subject.cert, 'the CA to cross-sign');
  const issuerCert = parseCertificate(issuer.cert, 'the cross-signing CA');
  const signer = await signingKey(issuer.key);
  const subjectKeyId = subjectCert.getExtension(x509.SubjectKeyIdentifierExtension);
  const issuerKeyId = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const notAfter = Math.min(subjectCert.notAfter.getTime(), issuerCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: subjectCert.subjectName,
      issuer: issuerCert.subjectName,
      notBefore: new Date(now - backdateMs(Math.max(1000, notAfter - now))),
      notAfter: new Date(notAfter),
      publicKey: subjectCert.publicKey,
      signingKey: signer.key,
      signingAlgorithm: signer.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        subjectKeyId ?? (await x509.SubjectKeyIdentifierExtension.create(subjectCert.publicKey, false, crypto)),
        issuerKeyId === undefined ? await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey, false, crypto) : new x509.AuthorityKeyIdentifierExtension(issuerKeyId),
      ],
    },
    crypto,
  );
  return pemText(cert.toString('pem'));
}

/**
 * A serving certificate for a public key the operator never sees the private half of (a sidecar's
 * agent-facing key): ECDSA P-256 SPKI in PEM. Otherwise as issueServingCertificate: the given SANs,
 * serverAuth, never outliving the CA. Returns the leaf's PEM and its notAfter.
 */
export async function issueCertificateForKey({
  ca,
  publicKeyPem,
  names,
  now,
  validityMs,
}: {
  readonly ca: Issued;
  readonly publicKeyPem: string;
  readonly names: ServingNames;
  readonly now: number;
  readonly validityMs: number;
}): Promise<{ readonly cert: string; readonly notAfter: number }> {
  checkValidity(validityMs);
  if (names.dnsNames.length === 0 && names.ipAddresses.length === 0) throw new CertificateError('InvalidName', 'a serving certificate needs at least one name');
  let publicKey: webcrypto.CryptoKey;
  try {
    publicKey = await crypto.subtle.importKey('spki', x509.PemConverter.decodeFirst(publicKeyPem), EC_KEY, true, ['verify']);
  } catch (err) {
    throw new CertificateError('InvalidKey', `the public key is not a PEM SubjectPublicKeyInfo of an ECDSA P-256 key: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const caCert = parseCertificate(ca.cert, 'the CA certificate');
  const signer = await signingKey(ca.key);
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const commonName = names.dnsNames[0] ?? names.ipAddresses[0] ?? '';
  const notAfter = Math.min(now + validityMs, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: [{ CN: [commonName] }],
      issuer: caCert.subjectName,
      notBefore: new Date(now - backdateMs(validityMs)),
      notAfter: new Date(notAfter),
      publicKey,
      signingKey: signer.key,
      signingAlgorithm: signer.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([...names.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...names.ipAddresses.map((value) => ({ type: 'ip' as const, value }))]),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        caKeyId === undefined ? await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto) : new x509.AuthorityKeyIdentifierExtension(caKeyId),
      ],
    },
    crypto,
  );
  return { cert: pemText(cert.toString('pem')), notAfter };
}
