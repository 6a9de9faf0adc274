/**
 * Bytes of SSH output to text for the masker, and back, without losing a byte. Valid UTF-8 is
 * decoded as such (a character split across chunks is carried to the next chunk); every byte
 * that is not part of valid UTF-8 becomes a lone surrogate U+DC80..U+DCFF ("surrogateescape"),
 * which `encodeOutput` turns back into the same byte. So binary output (tar, gzip) passes
 * through intact, and text is masked as text. Pure.
 */
import { isUtf8 } from 'node:buffer';

const ESCAPED = /[\uDC80-\uDCFF]/u;
const ESCAPED_ALL = /[\uDC80-\uDCFF]/gu;

/** How many bytes a sequence starting with `lead` has, or 0 when `lead` cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** The bounds of the second byte after `lead` (the first continuation byte). */
function secondByteOk(lead: number, b: number): boolean {
  if (lead === 0xe0) return b >= 0xa0 && b <= 0xbf;
  if (lead === 0xed) return b >= 0x80 && b <= 0x9f;
  if (lead === 0xf0) return b >= 0x90 && b <= 0xbf;
  if (lead === 0xf4) return b >= 0x80 && b <= 0x8f;
  return b >= 0x80 && b <= 0xbf;
}

/** Length of a trailing incomplete but so far valid sequence (0..3). */
function incompleteTail(buf: Uint8Array): number {
  const n = buf.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const b = buf[n - k] ?? 0;
    if (b >= 0x80 && b < 0xc0) continue; // continuation byte: look further back
    const need = sequenceLength(b);
    if (need <= k) return 0;
    if (k >= 2 && !secondByteOk(b, buf[n - k + 1] ?? 0)) return 0;
    return k;
  }
  return 0;
}

function decodeSlow(buf: Buffer): string {
  const parts: string[] = [];
  let run = 0;
  let i = 0;
  while (i < buf.length) {
    const b = buf[i] ?? 0;
    const need = sequenceLength(b);
    let ok = need > 0 && i + need <= buf.length;
    if (ok && need > 1) {
      ok = secondByteOk(b, buf[i + 1] ?? 0);
      for (let j = 2; ok && j < need; j++) {
        const c = buf[i + j] ?? 0;
        ok = c >= 0x80 && c <= 0xbf;
      }
    }
    if (ok) {
      i += need;
      continue;
    }
    if (run < i) parts.push(buf.toString('utf8', run, i));
    parts.push(String.fromCharCode(0xdc00 + b));
    i += 1;
    run = i;
  }
  if (run < buf.length) parts.push(buf.toString('utf8', run));
  return parts.join('');
}

/** Decodes one output stream chunk by chunk. */
export class OutputDecoder {
  #carry: Buffer | undefined;
  /** true once a byte had to be escaped: encoders must then look for escapes */
  escaped = false;

  decode(chunk: Buffer): string {
    const data = this.#carry === undefined ? chunk : Buffer.concat([this.#carry, chunk]);
    const tail = incompleteTail(data);
    const body = tail === 0 ? data : data.subarray(0, data.length - tail);
    this.#carry = tail === 0 ? undefined : Buffer.from(data.subarray(data.length - tail));
    if (isUtf8(body)) return body.toString('utf8');
    this.escaped = true;
    return decodeSlow(body);
  }

  /** The bytes still carried (an incomplete character at the end of the stream), escaped. */
  end(): string {
    const carry = this.#carry;
    this.#carry = undefined;
    if (carry === undefined) return '';
    this.escaped = true;
    return decodeSlow(carry);
  }
}

/** Encodes text from `OutputDecoder` (possibly masked) back to bytes. */
export function encodeOutput(text: string, mayHaveEscapes = true): Buffer {
  if (!mayHaveEscapes || !ESCAPED.test(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(ESCAPED_ALL)) {
    const at = m.index;
    if (at > last) parts.push(Buffer.from(text.slice(last, at), 'utf8'));
    parts.push(Buffer.of(text.charCodeAt(at) - 0xdc00));
    last = at + 1;
  }
  if (last < text.length) parts.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(parts);
}
