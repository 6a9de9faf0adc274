/**
 * @airlock/native: the few operations Node.js has no fast API for, as a small N-API addon
 * (src/*.c, built by `make install` against the pinned Node.js 24's headers):
 * - HMAC-SHA256 of short texts through Node's own OpenSSL, for the masker's `hash` action;
 * - append-only files written through a shared memory mapping, for session recordings: a
 *   record reaches the page cache (the operating system) without a system call.
 *
 * The addon is optional at run time: when it is not built (an install without scripts) or does
 * not load, `nativeHmac` and `openMappedFile` return undefined and callers use their JavaScript
 * implementation (the same output). `make install` checks that it loads.
 */
import { createRequire } from 'node:module';

/** An open mapped file: what recOpen returns (an opaque external). */
declare const mappedFile: unique symbol;
type MappedHandle = { readonly [mappedFile]: true };

interface Binding {
  hmacKey(key: Uint8Array): ArrayBuffer;
  hmacTag(state: ArrayBuffer, text: string, length: number): string;
  recOpen(path: string): MappedHandle;
  recAppend(file: MappedHandle, text: string): void;
  recClose(file: MappedHandle): void;
  recSize(file: MappedHandle): number;
  recAppendRecord(file: MappedHandle, seq: number, time: string | undefined, body: string, prev: string): string;
}

const FUNCTIONS = ['hmacKey', 'hmacTag', 'recOpen', 'recAppend', 'recAppendRecord', 'recClose', 'recSize'] as const;

function isBinding(value: unknown): value is Binding {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return FUNCTIONS.every((f) => typeof v[f] === 'function');
}

let binding: Binding | undefined;
let loadError: string | undefined;
try {
  const loaded: unknown = createRequire(import.meta.url)('../build/Release/airlock_native.node');
  if (isBinding(loaded)) binding = loaded;
  else loadError = `the addon does not export ${FUNCTIONS.join(', ')}`;
} catch (err) {
  loadError = err instanceof Error ? err.message : String(err);
}

/** Why the addon is not available (undefined when it is). */
export function nativeUnavailable(): string | undefined {
  return binding === undefined ? (loadError ?? 'not loaded') : undefined;
}

/**
 * HMAC-SHA256 under `key`: a function from a text (hashed as UTF-8, lone surrogates as U+FFFD)
 * to `hmac:` and the first 8 bytes of the digest as 16 lowercase hex digits (the masker's hash
 * tag, made in one call); undefined without the addon.
 */
export function nativeHmac(key: Uint8Array): ((text: string) => string) | undefined {
  const b = binding;
  if (b === undefined) return undefined;
  const state = b.hmacKey(key);
  return (text) => b.hmacTag(state, text, text.length);
}

/** An append-only file written through a shared mapping (see src/recording.c). */
export interface MappedFile {
  /** Appends the UTF-8 of text. Throws an Error (code AIRLOCK_RECORDING) when space cannot be reserved. */
  append(text: string): void;
  /**
   * Appends one hash-chained record line, `{"seq":…,"time":…,<body's fields>,"prev":…,"hash":…}`
   * and a newline, as sidecar/src/record/chain.ts `seal` makes it (`body` is the JSON text of
   * an object without seq, prev or hash; `time` plain ASCII, or undefined for none). Returns
   * the record's hash. Throws like append.
   */
  appendRecord(seq: number, time: string | undefined, body: string, prev: string): string;
  /** Truncates the file to its content, fsyncs and closes it. Throws on an I/O error. */
  close(): void;
  /** bytes of content */
  readonly size: number;
}

/**
 * Creates `path` (it must not exist; mode 0600) as a mapped append-only file; undefined without
 * the addon. Until closed, the file is longer than its content: it ends with the zero bytes of
 * its reservation (so does a file whose writer died), which readers ignore.
 */
export function openMappedFile(path: string): MappedFile | undefined {
  const b = binding;
  if (b === undefined) return undefined;
  const handle = b.recOpen(path);
  return {
    append: (text) => {
      b.recAppend(handle, text);
    },
    appendRecord: (seq, time, body, prev) => b.recAppendRecord(handle, seq, time, body, prev),
    close: () => {
      b.recClose(handle);
    },
    get size() {
      return b.recSize(handle);
    },
  };
}
