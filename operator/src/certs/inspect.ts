/**
 * Reading certificates and keys as the Secrets hold them, synchronously, so the plan stays a
 * plain function: @peculiar/x509 parses the fields, node:crypto checks signatures and key pairs.
 */
import { X509Certificate as NodeCertificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CertificateError } from './errors.ts';
import { backdateMs } from './issue.ts';

export interface CertificateInfo {
  /** the certificate alone, PEM, ending with a newline */
  readonly pem: string;
  /** SHA-256 of the DER, hex */
  readonly fingerprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** when it was issued: notBefore without the backdating of issue.ts */
  readonly issuedAt: number;
  readonly isCa: boolean;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly node: NodeCertificate;
}

/** the PEM blocks of type CERTIFICATE in `text`, each re-encoded alone, ending with a newline */
export function certificateBlocks(text: string): string[] {
  let blocks: { type: string; rawData: ArrayBuffer }[];
  try {
    blocks = x509.PemConverter.decodeWithHeaders(text);
  } catch (err) {
    throw new CertificateError('InvalidCertificate', `not PEM: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return blocks.filter((b) => b.type === 'CERTIFICATE').map((b) => `${x509.PemConverter.encode(b.rawData, 'CERTIFICATE')}\n`);
}

/** IPv6 written one way, so SANs compare equal however they were spelled */
export function canonicalIp(address: string): string {
  if (isIP(address) !== 6) return address;
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

function inspectOne(pem: string): CertificateInfo {
  try {
    const parsed = new x509.X509Certificate(pem);
    const node = new NodeCertificate(pem);
    const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
    const names = san?.names.toJSON() ?? [];
    const notBefore = parsed.notBefore.getTime();
    const notAfter = parsed.notAfter.getTime();
    return {
      pem,
      fingerprint: node.fingerprint256.replaceAll(':', '').toLowerCase(),
      notBefore,
      notAfter,
      issuedAt: notBefore + issuedAfterNotBefore(notAfter - notBefore),
      isCa: parsed.getExtension(x509.BasicConstraintsExtension)?.ca === true,
      dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
      ipAddresses: names.filter((n) => n.type === 'ip').map((n) => canonicalIp(n.value)),
      node,
    };
  } catch (err) {
    throw new CertificateError('InvalidCertificate', `not an X.509 certificate: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** the inverse of issue.ts's backdating, from the lifetime notAfter - notBefore = validity + backdate */
function issuedAfterNotBefore(lifetimeMs: number): number {
  // backdate = min(60 s, validity / 10): 60 s once validity ≥ 600 s, i.e. lifetime ≥ 660 s
  return lifetimeMs >= 660_000 ? backdateMs(lifetimeMs) : Math.floor(lifetimeMs / 11);
}

/** every certificate of a PEM text (a bundle), in order; throws CertificateError when there is none or one is invalid */
export function inspectCertificates(text: string): CertificateInfo[] {
  const blocks = certificateBlocks(text);
  if (blocks.length === 0) throw new CertificateError('InvalidCertificate', 'no PEM certificate found');
  return blocks.map(inspectOne);
}

/** the first certificate of a PEM text */
export function inspectCertificate(text: string): CertificateInfo {
  const [first] = inspectCertificates(text);
  if (first === undefined) throw new CertificateError('InvalidCertificate', 'no PEM certificate found');
  return first;
}

export function readPrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new CertificateError('InvalidKey', `not a PEM private key: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** whether `key` (PEM) is the private key of `cert` */
export function keyMatches(cert: CertificateInfo, key: string): boolean {
  try {
    return cert.node.checkPrivateKey(readPrivateKey(key));
  } catch {
    return false;
  }
}

/** whether `ca` issued `cert`: names chain and the signature verifies with the CA's key */
export function signedBy(cert: CertificateInfo, ca: CertificateInfo): boolean {
  try {
    return cert.node.checkIssued(ca.node) && cert.node.verify(ca.node.publicKey);
  } catch {
    return false;
  }
}

/** the time from which less than a third of the certificate's lifetime remains: renew then */
export function renewalTime(cert: CertificateInfo): number {
  return cert.notAfter - Math.floor((cert.notAfter - cert.issuedAt) / 3);
}
