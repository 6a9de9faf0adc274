import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DETECTORS } from '@airlock/api';
import { compileMasker, type Masker } from '../src/mask/masker.ts';

const KEY = Buffer.from('stream-test-key');
const everything = (): Masker =>
  compileMasker(
    [
      { name: 'all', match: { detectors: DETECTORS }, action: { type: 'redact' } },
      { name: 'emp', match: { pattern: 'EMP-[0-9]{6}' }, action: { type: 'hash' } },
    ],
    KEY,
  );

const streamed = (m: Masker, chunks: readonly string[], maxHeld?: number): string => {
  const s = m.stream(maxHeld === undefined ? {} : { maxHeld });
  return chunks.map((c) => s.push(c)).join('') + s.end();
};

const SECRETS = [
  'alice@example.com',
  '4111 1111 1111 1111',
  'AKIAIOSFODNN7EXAMPLE',
  'EMP-123456',
  'postgres://app:s3cretpass@db.internal/x',
  'ghp_0123456789abcdefghijklmnopqrstuvwxyzAB',
];
/** the part of each secret that must never show */
const core = (s: string): string => (s.startsWith('postgres://') ? 's3cretpass' : s.startsWith('4111') ? '1111 1111 1111' : s);

const filler = fc.array(fc.constantFrom('lorem', 'ipsum', 'x=1', '{"k":"v"}', 'path/to/file', '12', '--opt', 'é', '🚀', ''), { minLength: 1, maxLength: 60 }).map((w) => w.join(' '));

test('property: a secret straddling chunk boundaries at every offset, in a line longer than the held limit, is masked as maskText masks it', () => {
  const m = everything();
  fc.assert(
    fc.property(filler, fc.constantFrom(...SECRETS), filler, fc.integer({ min: 160, max: 600 }), fc.integer({ min: 5, max: 97 }), (before, secret, after, maxHeld, step) => {
      // a long line: the secret lands somewhere past the held limit
      const pad = 'w'.repeat(maxHeld);
      const line = `${pad} ${before} ${secret} ${after} ${pad}\n`;
      const want = m.maskText(line).text;
      assert.ok(!want.includes(core(secret)));
      const at = line.indexOf(secret);
      for (let k = at - 1; k <= at + secret.length + 1; k++) {
        // first cut at every offset around the secret, then chunks of `step` characters
        const chunks = [line.slice(0, k)];
        for (let i = k; i < line.length; i += step) chunks.push(line.slice(i, i + step));
        const out = streamed(m, chunks, maxHeld);
        assert.equal(out, want, `maxHeld ${maxHeld}, cut at ${k}`);
      }
    }),
    { numRuns: 60 },
  );
});

test('a 1 MB line is emitted while it streams, and the output equals maskText', () => {
  const m = everything();
  const words: string[] = [];
  for (let i = 0, n = 0; n < 1_000_000; i++) {
    const w = i % 500 === 0 ? (SECRETS[(i / 500) % SECRETS.length] ?? '') : `w${i}`;
    words.push(w);
    n += w.length + 1;
  }
  const line = `${words.join(' ')}\n`;
  const s = m.stream();
  let out = '';
  let emittedBeforeEnd = 0;
  for (let i = 0; i < line.length; i += 32 * 1024) {
    out += s.push(line.slice(i, i + 32 * 1024));
    if (i + 32 * 1024 < line.length) emittedBeforeEnd = out.length;
  }
  out += s.end();
  assert.ok(emittedBeforeEnd > 800_000, `only ${emittedBeforeEnd} characters emitted before the line ended`);
  assert.equal(out, m.maskText(line).text);
  for (const secret of SECRETS) assert.ok(!out.includes(core(secret)), secret);
  assert.ok(s.masked > 0);
});

test('a line without blanks or delimiters is cut anyway, with context for the detectors', () => {
  const m = everything();
  const line = `${'A'.repeat(300_000)}postgres://user:hunter2pw@host/x${'B'.repeat(300_000)}\n`;
  const chunks = line.match(/[\s\S]{1,10000}/g) ?? [];
  const out = streamed(m, chunks);
  assert.equal(out, m.maskText(line).text);
  assert.ok(!out.includes('hunter2pw'));
});

test('a private key marker in a long line is held back with what follows it', () => {
  const m = everything();
  const body = 'MIIEowIBAAKCAQEA7bq4q0Zt9Lw';
  const text = `${'x '.repeat(200)}-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\nafter\n`;
  for (const size of [1, 5, 64]) {
    const out = streamed(m, text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [], 160);
    assert.ok(!out.includes(body), `chunks of ${size}: ${out}`);
    assert.ok(out.endsWith('after\n'));
  }
});

test('a single masked span longer than half the limit is replaced by one marker to the end of its line', () => {
  const m = compileMasker([{ name: 'tok', match: { pattern: 'tok_[a-z]+' }, action: { type: 'redact' } }], KEY);
  const line = `start tok_${'a'.repeat(500)} end\nnext tok_b\n`;
  const out = streamed(m, line.match(/[\s\S]{1,50}/g) ?? [], 160);
  assert.ok(!out.includes('aaaa'), out);
  assert.ok(out.endsWith('\nnext [REDACTED]\n'), out);
});
