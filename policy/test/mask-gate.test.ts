/**
 * ColumnMasker.mayMaskBytes (Masker.forColumn), the look at a value's bytes that spares
 * decoding it: whenever it says no, maskValue must leave the value unchanged. Checked on values built from the pieces detectors
 * and patterns look for (digits, separators, prefixes of tokens and keys, near misses), for
 * columns with and without column rules, and for every detector and pattern kind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DETECTORS } from '@airlock/api';
import { compileMasker, type MaskRuleSpec } from '../src/mask/masker.ts';

const key = new TextEncoder().encode('gate-key');
const rules: MaskRuleSpec[] = [
  { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
  { name: 'contact', match: { columns: ['*.customers.email'], detectors: ['email', 'phone'] }, action: { type: 'hash' } },
  { name: 'secrets', match: { detectors: ['aws_access_key', 'github_token', 'slack_token', 'private_key', 'url_credentials', 'bearer_token', 'jwt'] }, action: { type: 'redact' } },
  { name: 'others', match: { detectors: ['iban', 'us_ssn', 'ip_address'] }, action: { type: 'redact' } },
  { name: 'internal-ids', match: { pattern: 'EMP-[0-9]{6}' }, action: { type: 'redact' } },
  { name: 'tickets', match: { pattern: 'T[0-9]+-(?:a|b)' }, action: { type: 'redact' } },
  { name: 'salaries', match: { columns: ['hr.employees.salary'] }, action: { type: 'null' } },
];
const masker = compileMasker(rules, key);
const COLUMNS = ['public.customers.email', 'public.customers.name', 'hr.employees.salary', 'public.orders.note', undefined];

const pieces = fc.constantFrom(
  '4111 1111 1111 1111', '4111111111111112', '378282246310005', '12345', '0', ' ', '-', '.', '@', ':', '/', '_', '(', ')', '+',
  'user@example.com', 'a@b', 'example.com', '+1 415 555 2671', '415-555-2671', '078-05-1120', '219-09-9999',
  'DE89370400440532013000', 'DE89 3704', '192.168.0.1', '::1', 'fe80::1', 'AKIAIOSFODNN7EXAMPLE', 'AKIA', 'ghp_', 'ghp_' + 'a'.repeat(36),
  'xoxb-', 'xoxb-123456789012-abcdef', '-----BEGIN PRIVATE KEY-----', 'https://u:p@h.example', 'Bearer ', 'Bearer abcdefghijklmnopqrstuvwxyz',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', 'eyJ', 'EMP-123456', 'EMP-', 'T12-a', 'T1-c', 'é', '😀', 'x', 'customer', '\n',
);
const value = fc.oneof(fc.array(pieces, { maxLength: 6 }).map((a) => a.join('')), fc.string({ unit: 'binary-ascii', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }));

test('property: when mayMaskBytes says no, maskValue changes nothing', () => {
  fc.assert(
    fc.property(fc.constantFrom(...COLUMNS), value, fc.nat(3), (column, v, pad) => {
      const bytes = Buffer.concat([Buffer.alloc(pad, 0x41), Buffer.from(v, 'utf8'), Buffer.alloc(pad, 0x41)]);
      if (masker.forColumn(column).mayMaskBytes(bytes, pad, bytes.length - pad)) return;
      const r = masker.maskValue(column, bytes.toString('utf8', pad, bytes.length - pad));
      assert.equal(r.masked, 0, `${String(column)}: ${JSON.stringify(v)}`);
    }),
    { numRuns: 20000 },
  );
});

test('property: patterns alone (the literal look, gated by the features): a "no" never hides a match', () => {
  const patterns = compileMasker(
    [
      { name: 'internal-ids', match: { pattern: 'EMP-[0-9]{6}' }, action: { type: 'redact' } },
      { name: 'keys', match: { pattern: 'key_[a-f0-9]{4}@v2' }, action: { type: 'redact' } },
      { name: 'refs', match: { pattern: 'ref9[a-z]{3}' }, action: { type: 'redact' } },
    ],
    key,
  );
  // (a pattern without a literal every match holds would open the gate for every value)
  const nothing = Buffer.from('nothing here');
  assert.equal(patterns.forColumn(undefined).mayMaskBytes(nothing, 0, nothing.length), false);
  const bits = fc.constantFrom('EMP-123456', 'EMP-', 'EMP-12345', 'key_ab12@v2', 'ref9abc', 'ref9', 'ref', 'key_ab12', '@v2', '-', '_', '@', '0', 'E', 'é', 'x', ' ');
  fc.assert(
    fc.property(fc.oneof(fc.array(bits, { maxLength: 6 }).map((a) => a.join('')), fc.string({ unit: 'binary-ascii', maxLength: 30 })), (v) => {
      const bytes = Buffer.from(v, 'utf8');
      const r = patterns.maskValue(undefined, v);
      if (r.masked > 0) assert.equal(patterns.forColumn(undefined).mayMaskBytes(bytes, 0, bytes.length), true, JSON.stringify(v));
    }),
    { numRuns: 20000 },
  );
});

test('every detector alone: no false "no" on its own examples', () => {
  const examples: Record<string, string> = {
    email: 'mail a@b.io now', credit_card: '4111 1111 1111 1111', iban: 'DE89370400440532013000', us_ssn: '078-05-1120', phone: '+1 415 555 2671',
    ip_address: '10.0.0.1', jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl', aws_access_key: 'AKIAIOSFODNN7EXAMPLE', github_token: `ghp_${'a'.repeat(36)}`,
    slack_token: 'xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx', private_key: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----',
    url_credentials: 'postgres://admin:s3cret@db.internal/x', bearer_token: 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345',
  };
  for (const d of DETECTORS) {
    const m = compileMasker([{ name: d, match: { detectors: [d] }, action: { type: 'redact' } }], key);
    const text = examples[d] ?? '';
    assert.ok(m.maskValue(undefined, text).masked > 0, `${d} finds its example`);
    const b = Buffer.from(text);
    assert.equal(m.forColumn(undefined).mayMaskBytes(b, 0, b.length), true, d);
  }
});

test('the usual values of a result are ruled out without decoding (a pattern without a literal rules nothing out)', () => {
  // the example policy's rules (no IBAN detector: a letter, two digits and 15 characters may be one)
  const usual = compileMasker(rules.filter((r) => r.name !== 'tickets' && r.name !== 'others'), key);
  const rows = ['123456', 'customer 123456', 'pro', 'free', '2026-12-01', 'shipped', 'true', '-42.50'];
  for (const v of rows) {
    const b = Buffer.from(v);
    assert.equal(usual.forColumn('public.orders.note').mayMaskBytes(b, 0, b.length), false, v);
    assert.equal(masker.forColumn('public.orders.note').mayMaskBytes(b, 0, b.length), true, `${v}: T[0-9]+-(?:a|b) has no literal`);
  }
  const email = Buffer.from('user1@example.com');
  assert.equal(usual.forColumn('public.customers.email').mayMaskBytes(email, 0, email.length), true);
  const salary = Buffer.from('100000');
  assert.equal(usual.forColumn('hr.employees.salary').mayMaskBytes(salary, 0, salary.length), true, 'a whole-value rule');
});
