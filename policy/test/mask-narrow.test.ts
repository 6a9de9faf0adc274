/**
 * The masker's fast paths for SQL values against its reference path (maskValue of the decoded
 * text): ColumnMasker.narrow (detectors and patterns a column's type rules out are left out,
 * once per column) and ColumnMasker.maskUtf8 (the look at the bytes and the masking in one
 * pass); and the hash's two implementations (the native addon, the JavaScript reference)
 * against each other and node:crypto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { DETECTORS, type Detector } from '@airlock/api';
import { nativeHmac } from '@airlock/native';
import { hmacSha256 } from '../src/mask/hmac.ts';
import { compileMasker, type MaskRuleSpec, type ValueClass } from '../src/mask/masker.ts';

const NUM_RUNS = { numRuns: 500 };
const KEY = new TextEncoder().encode('narrow-key');

/** Patterns whose literal an integer can or cannot hold, and one without a literal. */
const PATTERNS = ['EMP-[0-9]{6}', '12[0-9]{3}', '-9[0-9]+', '[0-9]{9}', '00', 'x[0-9]+', '(1|2)3'];
const ACTIONS = ['redact', 'partial', 'hash', 'null'] as const;

const ruleSpec: fc.Arbitrary<MaskRuleSpec> = fc
  .record({
    detectors: fc.subarray([...DETECTORS] as Detector[], { minLength: 0, maxLength: 4 }),
    pattern: fc.option(fc.constantFrom(...PATTERNS), { nil: undefined }),
    columns: fc.option(fc.constant(['public.t.c']), { nil: undefined }),
    action: fc.constantFrom(...ACTIONS),
    keepLast: fc.nat({ max: 4 }),
  })
  .filter((r) => r.detectors.length > 0 || r.pattern !== undefined || r.columns !== undefined)
  .map((r) => ({
    name: 'r',
    match: { ...(r.detectors.length > 0 ? { detectors: r.detectors } : {}), ...(r.pattern === undefined ? {} : { pattern: r.pattern }), ...(r.columns === undefined ? {} : { columns: r.columns }) },
    action: { type: r.action, keepLast: r.keepLast },
  }));

const policy = fc.array(ruleSpec, { minLength: 1, maxLength: 4 }).map((rules) => rules.map((r, i) => ({ ...r, name: `r${String(i)}` })));

const SIGNED = '-0123456789';
const CLASSES: readonly (readonly [ValueClass, fc.Arbitrary<string>])[] = [
  [{ chars: SIGNED, maxLength: 6, maxDigits: 5 }, fc.integer({ min: -32768, max: 32767 }).map(String)],
  [{ chars: SIGNED, maxLength: 11, maxDigits: 10 }, fc.integer({ min: -2147483648, max: 2147483647 }).map(String)],
  [
    { chars: SIGNED, maxLength: 20, maxDigits: 19 },
    fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String), fc.constantFrom('4111111111111111', '-4111111111111111', '5500000000000004', '123456789', '12345')),
  ],
  [{ chars: 'tf', maxLength: 1, maxDigits: 0 }, fc.constantFrom('t', 'f')],
  [{ chars: '\u0000', maxLength: 1, maxDigits: 0 }, fc.constant('\u0000')],
];

test('narrow: a column masker narrowed to a value class masks every value of the class as the full one does', () => {
  fc.assert(
    fc.property(policy, fc.nat({ max: CLASSES.length - 1 }).chain((k) => fc.tuple(fc.constant(k), fc.array((CLASSES[k] ?? [])[1] ?? fc.constant('0'), { minLength: 1, maxLength: 20 }))), fc.boolean(), (rules, [k, values], byColumn) => {
      const masker = compileMasker(rules, KEY);
      const full = byColumn ? masker.forColumn('public.t.c') : masker.forColumn(undefined);
      const narrowed = full.narrow((CLASSES[k] ?? [])[0] ?? { chars: '', maxLength: 0, maxDigits: 0 });
      for (const v of values) {
        const want = full.maskValue(v);
        if (!narrowed.canMatch) assert.equal(want.masked, 0, `narrowed away, yet ${JSON.stringify(v)} is masked`);
        else assert.deepEqual(narrowed.maskValue(v), want);
      }
    }),
    NUM_RUNS,
  );
});

test('narrow: an integer column needs no detector of the example policy, an int8 still gets the card detector', () => {
  const masker = compileMasker(
    [
      { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
      { name: 'secrets', match: { detectors: ['aws_access_key', 'github_token', 'slack_token', 'private_key', 'url_credentials', 'bearer_token', 'jwt'] }, action: { type: 'redact' } },
      { name: 'ids', match: { pattern: 'EMP-[0-9]{6}' }, action: { type: 'redact' } },
      { name: 'salary', match: { columns: ['hr.employees.salary'] }, action: { type: 'null' } },
    ],
    KEY,
  );
  assert.equal(masker.forColumn('public.t.id').narrow({ chars: SIGNED, maxLength: 11, maxDigits: 10 }).canMatch, false);
  const int8 = masker.forColumn('public.t.id').narrow({ chars: SIGNED, maxLength: 20, maxDigits: 19 });
  assert.equal(int8.canMatch, true);
  assert.equal(int8.maskValue('4111111111111111').value, '************1111');
  // a whole-column rule stays whatever the type
  assert.equal(masker.forColumn('hr.employees.salary').narrow({ chars: SIGNED, maxLength: 11, maxDigits: 10 }).canMatch, true);
});

/** Values near what detectors look for, and any text. */
const value = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom('user1@example.com', 'card 4111 1111 1111 1111', 'EMP-123456', 'AKIAIOSFODNN7EXAMPLE', 'x'.repeat(5000) + ' a@b.co', 'ünïcode a@example.com', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln'),
  fc.tuple(fc.string({ unit: 'grapheme-ascii', maxLength: 10 }), fc.constantFrom('a@example.com', '4111111111111111', 'EMP-000001', '+1 415 555 0100')).map(([a, b]) => a + b),
);

test('maskUtf8: the look at the bytes and the masking in one pass equals maskValue of the decoded text', () => {
  const masker = compileMasker(
    [
      { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
      { name: 'contact', match: { columns: ['*.customers.email'], detectors: ['email', 'phone'] }, action: { type: 'hash' } },
      { name: 'secrets', match: { detectors: ['aws_access_key', 'github_token', 'slack_token', 'private_key', 'url_credentials', 'bearer_token', 'jwt'] }, action: { type: 'redact' } },
      { name: 'ids', match: { pattern: 'EMP-[0-9]{6}' }, action: { type: 'redact' } },
      { name: 'whole', match: { columns: ['hr.*.salary'] }, action: { type: 'null' } },
    ],
    KEY,
  );
  const columns = ['public.customers.email', 'public.orders.note', 'hr.employees.salary', undefined];
  fc.assert(
    fc.property(value, fc.constantFrom(...columns), (v, column) => {
      const m = masker.forColumn(column);
      const bytes = Buffer.from(v, 'utf8');
      const text = bytes.toString('utf8');
      const got = m.maskUtf8(bytes, 0, bytes.length, (b, s, e) => b.toString('utf8', s, e));
      const want = m.maskValue(text);
      if (got === undefined) assert.deepEqual({ value: want.value, masked: want.masked }, { value: text, masked: 0 });
      else assert.deepEqual(got, want);
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------------------------
// One hash: the native addon and the JavaScript reference give the same tag, for any text

const tagOf = (words: Int32Array): string => `hmac:${((words[0] ?? 0) >>> 0).toString(16).padStart(8, '0')}${((words[1] ?? 0) >>> 0).toString(16).padStart(8, '0')}`;

test('the native hash and the JavaScript reference agree with each other and with node:crypto on any key and text', (t) => {
  const probe = nativeHmac(KEY);
  if (probe === undefined) {
    t.skip('the addon is not built');
    return;
  }
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.constantFrom(0, 55, 56, 64, 1024, 1025, 4000).chain((n) => fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\ud800'), minLength: n, maxLength: n })),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), text, (key, s) => {
      const native = nativeHmac(key)?.(s);
      const js = tagOf(hmacSha256(key)(s));
      assert.equal(native, js);
      assert.equal(js, `hmac:${createHmac('sha256', key).update(s, 'utf8').digest('hex').slice(0, 16)}`);
    }),
    NUM_RUNS,
  );
});
