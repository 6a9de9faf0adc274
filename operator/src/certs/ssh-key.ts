/**
 * The per-namespace Airlock SSH host key: ECDSA P-256, derived with HKDF-SHA256 from the seed in
 * Secret OBJECT_NAMES.sshHostKeySecret and the namespace's name, so every operator replica hands
 * the same key to the sidecars of a namespace without storing one per namespace, and a sidecar's
 * key is worthless in another namespace. ECDSA because ssh2 reads SEC1 PEM (`EC PRIVATE KEY`),
 * which node writes. No I/O.
 */
import { createECDH, createPrivateKey, hkdfSync } from 'node:crypto';
import { CertificateError } from './errors.ts';

export const SSH_SEED_BYTES = 32;
const SALT = 'airlock.dev ssh host key v1';

export interface SshHostKey {
  /** PEM, SEC1 (`-----BEGIN EC PRIVATE KEY-----`) */
  readonly privateKey: string;
  /** `ecdsa-sha2-nistp256 <base64>` (the form of known_hosts and authorized_keys) */
  readonly publicKey: string;
}

function sshString(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** the OpenSSH public key of an uncompressed P-256 point */
export function sshEcdsaPublicKey(point: Buffer): string {
  const blob = Buffer.concat([sshString(Buffer.from('ecdsa-sha2-nistp256')), sshString(Buffer.from('nistp256')), sshString(point)]);
  return `ecdsa-sha2-nistp256 ${blob.toString('base64')}`;
}

export function deriveSshHostKey(seed: Uint8Array, namespace: string): SshHostKey {
  if (seed.length < SSH_SEED_BYTES) throw new CertificateError('InvalidKey', `the SSH host key seed has ${String(seed.length)} bytes; at least ${String(SSH_SEED_BYTES)} are needed`);
  if (namespace === '') throw new CertificateError('InvalidName', 'an SSH host key needs a namespace');
  // a scalar outside [1, n-1] is refused by setPrivateKey: try the next counter (probability ~2^-32)
  for (let counter = 0; counter < 16; counter++) {
    const d = Buffer.from(hkdfSync('sha256', seed, SALT, `${namespace}\u0000${String(counter)}`, 32));
    const ecdh = createECDH('prime256v1');
    try {
      ecdh.setPrivateKey(d);
    } catch {
      continue;
    }
    const point = ecdh.getPublicKey();
    const jwk = { kty: 'EC', crv: 'P-256', d: d.toString('base64url'), x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') };
    const pem = createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'sec1', format: 'pem' }).toString();
    return { privateKey: pem, publicKey: sshEcdsaPublicKey(point) };
  }
  throw new CertificateError('InvalidKey', 'no valid P-256 scalar could be derived from the SSH host key seed');
}
