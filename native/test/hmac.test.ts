/**
 * The native HMAC against node:crypto: any key (empty, short, a block, longer than a block) and
 * any text (UTF-8 of every width, lone surrogates, the SHA-256 block edges, texts longer than
 * the addon's stack buffer), and its argument errors.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { nativeHmac, nativeUnavailable } from '../src/index.ts';

const want = (key: Uint8Array, text: string): string => `hmac:${createHmac('sha256', key).update(text, 'utf8').digest('hex').slice(0, 16)}`;

test('the addon is built and loads (make install builds it)', () => {
  assert.equal(nativeUnavailable(), undefined);
  assert.equal(typeof nativeHmac(new Uint8Array(8)), 'function');
});

test('hmac of a known vector (RFC 4231 test case 2)', () => {
  const h = nativeHmac(new TextEncoder().encode('Jefe'));
  assert.equal(h?.('what do ya want for nothing?'), 'hmac:5bdcc146bf60754e');
});

test('native HMAC equals node:crypto for any key and text', () => {
  const edges = fc.constantFrom(0, 1, 55, 56, 63, 64, 65, 119, 120, 1022, 1023, 1024, 1025, 5000).chain((n) =>
    fc.string({ unit: fc.constantFrom('a', 'é', '€', '😀', '\ud800', '\udc00', '\u0000'), minLength: n, maxLength: n }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), edges), (key, text) => {
      assert.equal(nativeHmac(key)?.(text), want(key, text));
    }),
    { numRuns: 2000 },
  );
});

test('a text longer than any buffer is hashed whole', () => {
  const key = new Uint8Array([1, 2, 3]);
  const text = 'x'.repeat(1_000_000) + 'é';
  assert.equal(nativeHmac(key)?.(text), want(key, text));
});

test('bad arguments to the addon throw a TypeError, never crash', async () => {
  const { createRequire } = await import('node:module');
  const binding = createRequire(import.meta.url)('../build/Release/airlock_native.node') as {
    hmacKey(key: unknown): ArrayBuffer;
    hmacTag(state: unknown, text?: unknown, length?: unknown): string;
  };
  const state = binding.hmacKey(new Uint8Array(4));
  const code = { name: 'TypeError', code: 'AIRLOCK_NATIVE' };
  assert.throws(() => binding.hmacKey('key'), code);
  assert.throws(() => binding.hmacKey(new Uint16Array(4)), code);
  assert.throws(() => binding.hmacTag(new ArrayBuffer(3), 'x', 1), code);
  assert.throws(() => binding.hmacTag(state, 42, 2), code);
  assert.throws(() => binding.hmacTag(state, 'x', 'one'), code);
  assert.throws(() => binding.hmacTag(state), code);
  assert.equal(binding.hmacTag(state, 'x', 1), want(new Uint8Array(4), 'x'));
  // a wrong length only sizes the copy: the whole text is hashed
  const long = 'é'.repeat(900);
  for (const n of [0, 1, 900, -5, 1e9, NaN]) assert.equal(binding.hmacTag(state, long, n), want(new Uint8Array(4), long), String(n));
});
