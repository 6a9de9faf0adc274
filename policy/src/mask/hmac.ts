/**
 * HMAC-SHA256 (RFC 2104, FIPS 180-4) of short strings, in JavaScript, for the `hash` action.
 *
 * The key's inner and outer pad blocks are compressed once; each message then costs one
 * compression per 64 bytes of its UTF-8 plus one for the outer hash: about 0.5 µs for an email
 * address, the two compressions most of it. node:crypto costs 1-5 µs for the same (a Hash
 * object or its copy, or two one-shot `hash()` calls: the native calls and Buffers dominate).
 * Any length: texts over 1024 characters are encoded into a buffer of their own. The output is
 * byte-identical to `createHmac('sha256', key).update(text, 'utf8')` (a lone surrogate encodes
 * as U+FFFD in both); the tests check it, and the native addon's, against node:crypto.
 *
 * This is the reference implementation of the masker's `hash`: the masker hashes through the
 * native addon (@airlock/native, OpenSSL's SHA-256: 3-4x faster per value, measured with
 * policy/bench/hash.bench.ts) when it is built, and through this function when it is not.
 */
import { createHash } from 'node:crypto';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

/** The block: the caller puts its 16 big-endian words here. */
const W = new Int32Array(16);

/**
 * One SHA-256 compression of the block in W[0, 16) into state. Sixteen rounds per iteration,
 * with the message schedule in sixteen locals (wj holds W[t + j]) and the working variables
 * renamed instead of shifted: each round adds T1 to the variable playing d (the next e) and
 * puts T1 + T2 in the one playing h (the next a). About 30% faster than the textbook loop.
 */
function compress(state: Int32Array): void {
  let w0 = W[0] ?? 0;
  let w1 = W[1] ?? 0;
  let w2 = W[2] ?? 0;
  let w3 = W[3] ?? 0;
  let w4 = W[4] ?? 0;
  let w5 = W[5] ?? 0;
  let w6 = W[6] ?? 0;
  let w7 = W[7] ?? 0;
  let w8 = W[8] ?? 0;
  let w9 = W[9] ?? 0;
  let w10 = W[10] ?? 0;
  let w11 = W[11] ?? 0;
  let w12 = W[12] ?? 0;
  let w13 = W[13] ?? 0;
  let w14 = W[14] ?? 0;
  let w15 = W[15] ?? 0;
  let a = state[0] ?? 0;
  let b = state[1] ?? 0;
  let c = state[2] ?? 0;
  let d = state[3] ?? 0;
  let e = state[4] ?? 0;
  let f = state[5] ?? 0;
  let g = state[6] ?? 0;
  let h = state[7] ?? 0;
  let t1 = 0;
  for (let t = 0; t < 64; t += 16) {
    if (t > 0) {
      // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], in place
      w0 = (w0 + (((w1 >>> 7) | (w1 << 25)) ^ ((w1 >>> 18) | (w1 << 14)) ^ (w1 >>> 3)) + w9 + (((w14 >>> 17) | (w14 << 15)) ^ ((w14 >>> 19) | (w14 << 13)) ^ (w14 >>> 10))) | 0;
      w1 = (w1 + (((w2 >>> 7) | (w2 << 25)) ^ ((w2 >>> 18) | (w2 << 14)) ^ (w2 >>> 3)) + w10 + (((w15 >>> 17) | (w15 << 15)) ^ ((w15 >>> 19) | (w15 << 13)) ^ (w15 >>> 10))) | 0;
      w2 = (w2 + (((w3 >>> 7) | (w3 << 25)) ^ ((w3 >>> 18) | (w3 << 14)) ^ (w3 >>> 3)) + w11 + (((w0 >>> 17) | (w0 << 15)) ^ ((w0 >>> 19) | (w0 << 13)) ^ (w0 >>> 10))) | 0;
      w3 = (w3 + (((w4 >>> 7) | (w4 << 25)) ^ ((w4 >>> 18) | (w4 << 14)) ^ (w4 >>> 3)) + w12 + (((w1 >>> 17) | (w1 << 15)) ^ ((w1 >>> 19) | (w1 << 13)) ^ (w1 >>> 10))) | 0;
      w4 = (w4 + (((w5 >>> 7) | (w5 << 25)) ^ ((w5 >>> 18) | (w5 << 14)) ^ (w5 >>> 3)) + w13 + (((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10))) | 0;
      w5 = (w5 + (((w6 >>> 7) | (w6 << 25)) ^ ((w6 >>> 18) | (w6 << 14)) ^ (w6 >>> 3)) + w14 + (((w3 >>> 17) | (w3 << 15)) ^ ((w3 >>> 19) | (w3 << 13)) ^ (w3 >>> 10))) | 0;
      w6 = (w6 + (((w7 >>> 7) | (w7 << 25)) ^ ((w7 >>> 18) | (w7 << 14)) ^ (w7 >>> 3)) + w15 + (((w4 >>> 17) | (w4 << 15)) ^ ((w4 >>> 19) | (w4 << 13)) ^ (w4 >>> 10))) | 0;
      w7 = (w7 + (((w8 >>> 7) | (w8 << 25)) ^ ((w8 >>> 18) | (w8 << 14)) ^ (w8 >>> 3)) + w0 + (((w5 >>> 17) | (w5 << 15)) ^ ((w5 >>> 19) | (w5 << 13)) ^ (w5 >>> 10))) | 0;
      w8 = (w8 + (((w9 >>> 7) | (w9 << 25)) ^ ((w9 >>> 18) | (w9 << 14)) ^ (w9 >>> 3)) + w1 + (((w6 >>> 17) | (w6 << 15)) ^ ((w6 >>> 19) | (w6 << 13)) ^ (w6 >>> 10))) | 0;
      w9 = (w9 + (((w10 >>> 7) | (w10 << 25)) ^ ((w10 >>> 18) | (w10 << 14)) ^ (w10 >>> 3)) + w2 + (((w7 >>> 17) | (w7 << 15)) ^ ((w7 >>> 19) | (w7 << 13)) ^ (w7 >>> 10))) | 0;
      w10 = (w10 + (((w11 >>> 7) | (w11 << 25)) ^ ((w11 >>> 18) | (w11 << 14)) ^ (w11 >>> 3)) + w3 + (((w8 >>> 17) | (w8 << 15)) ^ ((w8 >>> 19) | (w8 << 13)) ^ (w8 >>> 10))) | 0;
      w11 = (w11 + (((w12 >>> 7) | (w12 << 25)) ^ ((w12 >>> 18) | (w12 << 14)) ^ (w12 >>> 3)) + w4 + (((w9 >>> 17) | (w9 << 15)) ^ ((w9 >>> 19) | (w9 << 13)) ^ (w9 >>> 10))) | 0;
      w12 = (w12 + (((w13 >>> 7) | (w13 << 25)) ^ ((w13 >>> 18) | (w13 << 14)) ^ (w13 >>> 3)) + w5 + (((w10 >>> 17) | (w10 << 15)) ^ ((w10 >>> 19) | (w10 << 13)) ^ (w10 >>> 10))) | 0;
      w13 = (w13 + (((w14 >>> 7) | (w14 << 25)) ^ ((w14 >>> 18) | (w14 << 14)) ^ (w14 >>> 3)) + w6 + (((w11 >>> 17) | (w11 << 15)) ^ ((w11 >>> 19) | (w11 << 13)) ^ (w11 >>> 10))) | 0;
      w14 = (w14 + (((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3)) + w7 + (((w12 >>> 17) | (w12 << 15)) ^ ((w12 >>> 19) | (w12 << 13)) ^ (w12 >>> 10))) | 0;
      w15 = (w15 + (((w0 >>> 7) | (w0 << 25)) ^ ((w0 >>> 18) | (w0 << 14)) ^ (w0 >>> 3)) + w8 + (((w13 >>> 17) | (w13 << 15)) ^ ((w13 >>> 19) | (w13 << 13)) ^ (w13 >>> 10))) | 0;
    }
    // T1 = h + Σ1(e) + Ch(e, f, g) + K[t] + W[t]; d += T1; h = T1 + Σ0(a) + Maj(a, b, c)
    t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + (K[t + 0] ?? 0) + w0) | 0;
    d = (d + t1) | 0;
    h = (t1 + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    t1 = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + (K[t + 1] ?? 0) + w1) | 0;
    c = (c + t1) | 0;
    g = (t1 + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
    t1 = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + (K[t + 2] ?? 0) + w2) | 0;
    b = (b + t1) | 0;
    f = (t1 + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
    t1 = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + (K[t + 3] ?? 0) + w3) | 0;
    a = (a + t1) | 0;
    e = (t1 + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
    t1 = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + (K[t + 4] ?? 0) + w4) | 0;
    h = (h + t1) | 0;
    d = (t1 + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
    t1 = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + (K[t + 5] ?? 0) + w5) | 0;
    g = (g + t1) | 0;
    c = (t1 + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
    t1 = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + (K[t + 6] ?? 0) + w6) | 0;
    f = (f + t1) | 0;
    b = (t1 + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
    t1 = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + (K[t + 7] ?? 0) + w7) | 0;
    e = (e + t1) | 0;
    a = (t1 + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
    t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + (K[t + 8] ?? 0) + w8) | 0;
    d = (d + t1) | 0;
    h = (t1 + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    t1 = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + (K[t + 9] ?? 0) + w9) | 0;
    c = (c + t1) | 0;
    g = (t1 + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
    t1 = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + (K[t + 10] ?? 0) + w10) | 0;
    b = (b + t1) | 0;
    f = (t1 + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
    t1 = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + (K[t + 11] ?? 0) + w11) | 0;
    a = (a + t1) | 0;
    e = (t1 + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
    t1 = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + (K[t + 12] ?? 0) + w12) | 0;
    h = (h + t1) | 0;
    d = (t1 + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
    t1 = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + (K[t + 13] ?? 0) + w13) | 0;
    g = (g + t1) | 0;
    c = (t1 + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
    t1 = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + (K[t + 14] ?? 0) + w14) | 0;
    f = (f + t1) | 0;
    b = (t1 + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
    t1 = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + (K[t + 15] ?? 0) + w15) | 0;
    e = (e + t1) | 0;
    a = (t1 + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  }
  state[0] = ((state[0] ?? 0) + a) | 0;
  state[1] = ((state[1] ?? 0) + b) | 0;
  state[2] = ((state[2] ?? 0) + c) | 0;
  state[3] = ((state[3] ?? 0) + d) | 0;
  state[4] = ((state[4] ?? 0) + e) | 0;
  state[5] = ((state[5] ?? 0) + f) | 0;
  state[6] = ((state[6] ?? 0) + g) | 0;
  state[7] = ((state[7] ?? 0) + h) | 0;
}

/** Compresses the bytes of `data` (a multiple of 64 long, padding included) into state. */
function compressBytes(state: Int32Array, data: Uint8Array, length: number): void {
  for (let at = 0; at < length; at += 64) {
    for (let t = 0; t < 16; t++) {
      const i = at + t * 4;
      W[t] = ((data[i] ?? 0) << 24) | ((data[i + 1] ?? 0) << 16) | ((data[i + 2] ?? 0) << 8) | (data[i + 3] ?? 0);
    }
    compress(state);
  }
}

const BLOCK = 64;
/** ASCII texts up to this length are one block with their padding: words straight from the text. */
const ONE_BLOCK = BLOCK - 9;
/** Texts up to this length are encoded into the shared scratch; longer ones into a buffer of their own. */
const JS_MAX_LENGTH = 1024;

const encoder = new TextEncoder();
/** The message's UTF-8 and its padding (texts that are not short ASCII). */
const scratch = new Uint8Array(JS_MAX_LENGTH * 3 + 2 * BLOCK);
const state = new Int32Array(8);

/** Sets W[0, 16) to the padded block of a short ASCII text; false (W clobbered) at the first non-ASCII character. */
function asciiBlock(text: string): boolean {
  const n = text.length;
  let t = 0;
  let word = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return false;
    word = (word << 8) | c;
    if ((i & 3) === 3) {
      W[t++] = word;
      word = 0;
    }
  }
  // 0x80 after the text, zeros, then the bit length of ipad || text (< 2^32)
  const r = n & 3;
  W[t++] = ((word << 8) | 0x80) << ((3 - r) * 8);
  while (t < 15) W[t++] = 0;
  W[15] = (BLOCK + n) * 8;
  return true;
}

/** UTF-8 of text (a lone surrogate as U+FFFD, as Buffer and TextEncoder do) and its padding in scratch; the padded length. */
function paddedUtf8(text: string, into: Uint8Array): number {
  const n = encoder.encodeInto(text, into).written;
  let end = n + 1 + 8;
  end += (BLOCK - (end % BLOCK)) % BLOCK;
  into[n] = 0x80;
  into.fill(0, n + 1, end - 4);
  // the bit length of ipad || text as a 64-bit big-endian number
  const bits = (BLOCK + n) * 8;
  const high = Math.floor(bits / 0x100000000);
  into[end - 8] = high >>> 24;
  into[end - 7] = (high >>> 16) & 0xff;
  into[end - 6] = (high >>> 8) & 0xff;
  into[end - 5] = high & 0xff;
  into[end - 4] = (bits >>> 24) & 0xff;
  into[end - 3] = (bits >>> 16) & 0xff;
  into[end - 2] = (bits >>> 8) & 0xff;
  into[end - 1] = bits & 0xff;
  return end;
}

/**
 * HMAC-SHA256 under `key`: a function from a text (hashed as UTF-8) to the digest as eight
 * big-endian 32-bit words. The words are a shared buffer, overwritten by the next call.
 */
export function hmacSha256(key: Uint8Array): (text: string) => Int32Array {
  const k = key.length > BLOCK ? createHash('sha256').update(key).digest() : key;
  const pad = new Uint8Array(BLOCK);
  const innerStart = IV.slice();
  const outerStart = IV.slice();
  for (let i = 0; i < BLOCK; i++) pad[i] = (k[i] ?? 0) ^ 0x36;
  compressBytes(innerStart, pad, BLOCK);
  for (let i = 0; i < BLOCK; i++) pad[i] = (k[i] ?? 0) ^ 0x5c;
  compressBytes(outerStart, pad, BLOCK);

  return (text) => {
    // inner = SHA256(ipad || text), continued from the ipad state
    state.set(innerStart);
    if (text.length <= ONE_BLOCK && asciiBlock(text)) compress(state);
    else if (text.length <= JS_MAX_LENGTH) compressBytes(state, scratch, paddedUtf8(text, scratch));
    else {
      const own = new Uint8Array(text.length * 3 + 2 * BLOCK);
      compressBytes(state, own, paddedUtf8(text, own));
    }
    // outer = SHA256(opad || inner): one block of the 32 inner bytes, 0x80, zeros, the bit length
    for (let i = 0; i < 8; i++) W[i] = state[i] ?? 0;
    W[8] = 0x80000000;
    W.fill(0, 9, 15);
    W[15] = (BLOCK + 32) * 8;
    state.set(outerStart);
    compress(state);
    return state;
  };
}
