/**
 * Host key fingerprints in the form `ssh-keygen -lf` prints them: `SHA256:` and the unpadded
 * base64 of the SHA-256 of the public key blob. Pure.
 */
import { createHash } from 'node:crypto';

/** The SHA256 fingerprint of an SSH public key blob (the wire encoding, as in a `.pub` file's base64). */
export function sha256Fingerprint(publicKeyBlob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Normalises a pinned fingerprint: `SHA256:<base64>` with or without padding, or a whole
 * `ssh-keygen -lf` line (`256 SHA256:... comment (ED25519)`). Undefined when it is not one.
 */
export function normalizeFingerprint(text: string): string | undefined {
  const m = /(?:^|\s)SHA256:([A-Za-z0-9+/]{43})=?(?:\s|$)/.exec(text.trim());
  return m?.[1] === undefined ? undefined : `SHA256:${m[1]}`;
}

/** True when the key's fingerprint is one of the pinned ones. */
export function isPinned(publicKeyBlob: Uint8Array, pinned: readonly string[]): boolean {
  const fp = sha256Fingerprint(publicKeyBlob);
  return pinned.some((p) => normalizeFingerprint(p) === fp);
}
