/**
 * @airlock/native: the few operations Node.js has no fast API for, as a small N-API addon
 * (src/*.c, built by `make install` against the pinned Node.js 24's headers). Today: HMAC-SHA256
 * of short texts through Node's own OpenSSL, for the masker's `hash` action.
 *
 * The addon is optional at run time: when it is not built (an install without scripts) or does
 * not load, `nativeHmac` returns undefined and callers use their JavaScript implementation,
 * which gives identical output. `make install` checks that it loads.
 */
import { createRequire } from 'node:module';

interface Binding {
  hmacKey(key: Uint8Array): ArrayBuffer;
  hmacHex16(state: ArrayBuffer, text: string): string;
}

function isBinding(value: unknown): value is Binding {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['hmacKey'] === 'function' && typeof v['hmacHex16'] === 'function';
}

let binding: Binding | undefined;
let loadError: string | undefined;
try {
  const loaded: unknown = createRequire(import.meta.url)('../build/Release/airlock_native.node');
  if (isBinding(loaded)) binding = loaded;
  else loadError = 'the addon does not export hmacKey and hmacHex16';
} catch (err) {
  loadError = err instanceof Error ? err.message : String(err);
}

/** Why the addon is not available (undefined when it is). */
export function nativeUnavailable(): string | undefined {
  return binding === undefined ? (loadError ?? 'not loaded') : undefined;
}

/**
 * HMAC-SHA256 under `key`: a function from a text (hashed as UTF-8, lone surrogates as U+FFFD)
 * to the first 8 bytes of the digest as 16 lowercase hex digits; undefined without the addon.
 */
export function nativeHmac(key: Uint8Array): ((text: string) => string) | undefined {
  const b = binding;
  if (b === undefined) return undefined;
  const state = b.hmacKey(key);
  return (text) => b.hmacHex16(state, text);
}
