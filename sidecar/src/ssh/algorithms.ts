/**
 * Cipher preference on both legs: AES-GCM first (hardware AES, one pass for cipher and MAC),
 * then ChaCha20-Poly1305; the rest of ssh2's defaults after them.
 */
export const CIPHERS = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
] as const;
