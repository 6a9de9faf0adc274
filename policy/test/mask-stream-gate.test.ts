/**
 * The streaming masker's fast path (stream.ts textGate): a text the gate rules out must be one
 * that maskText leaves unchanged, and a stream with the gate must give byte for byte the
 * reference path's output (no gate), whatever the chunking, with candidates split across
 * chunk boundaries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DETECTORS, type Detector } from '@airlock/api';
import { compileMasker, REDACTED } from '../src/mask/masker.ts';
import { createStreamMasker, textGate, type TextGate } from '../src/mask/stream.ts';

const KEY = Buffer.from('gate-test-key');

/** One real match of each detector (the tests first check that maskText finds it). */
const POSITIVES: Readonly<Record<Detector, readonly string[]>> = {
  email: ['alice@example.com', 'x.y+z@sub.example.co.uk'],
  credit_card: ['4111 1111 1111 1111', '4111111111111111', '5500-0000-0000-0004', 'x378282246310005y'],
  iban: ['DE89370400440532013000', 'GB82 WEST 1234 5698 7654 32', 'de89370400440532013000'],
  us_ssn: ['123-45-6789'],
  phone: ['+14155552671', '(415) 555-2671', '415-555-2671', '+44 20 7946 0958'],
  ip_address: ['10.0.0.1', '2001:db8::1', '192.168.1.254'],
  jwt: ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'],
  aws_access_key: ['AKIAIOSFODNN7EXAMPLE', 'ASIAIOSFODNN7EXAMPLE'],
  github_token: ['ghp_0123456789abcdefghijklmnopqrstuvwxyzAB'],
  slack_token: ['xoxb-1234567890-abcdefghij', 'xapp-1-A0123456789'],
  private_key: ['-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----', '-----BEGIN PRIVATE KEY-----\nMIIB'],
  url_credentials: ['postgres://app:s3cret@db.internal/x', 'https://u:p@h'],
  bearer_token: ['Bearer abcdefghijklmnopqrstuvwxyz0123', 'bearer\tABCDEFGHIJKLMNOPQRSTUV'],
};

const single = (d: Detector) => compileMasker([{ name: d, match: { detectors: [d] }, action: { type: 'redact' } }], KEY);
const gateOf = (detectors: readonly Detector[], literals: readonly string[] = []): TextGate => {
  const g = textGate({ detectors, literals });
  assert.ok(g !== undefined);
  return g;
};

/** Pieces that make texts near every detector's candidates: positives, their halves, and the characters they are made of. */
const PIECES = [
  ...Object.values(POSITIVES).flat(),
  ...Object.values(POSITIVES)
    .flat()
    .flatMap((p) => [p.slice(0, Math.ceil(p.length / 2)), p.slice(Math.ceil(p.length / 2))]),
  ...'0123456789 -.:@+()_/\n\teyJAKIxoBEGINPRIVATEKEYbearer'.split(''),
  '-----BEGIN ',
  'PRIVATE KEY',
  '://',
  '.e',
  '2026-11-23T10:05:00Z INFO worker-5 processed order 100005 in 5 ms status=ok\n',
  'é',
  '🚀',
  '\uDC80',
];
const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }).map((p) => p.join(''));
/** random text over the characters detectors look at, and any text */
const anyText = fc.oneof(text, fc.string({ unit: fc.constantFrom(...'0123456789 -.:@+_AKIxeyJ/\n'.split('')), maxLength: 80 }), fc.string({ maxLength: 80, unit: 'binary' }));

test('each positive is found by its detector, and its gate lets it through', () => {
  for (const d of DETECTORS) {
    const m = single(d);
    for (const p of POSITIVES[d]) {
      assert.notEqual(m.maskText(p).text, p, `${d} masks ${JSON.stringify(p)}`);
      assert.ok(gateOf([d])(p), `${d} gate on ${JSON.stringify(p)}`);
    }
  }
});

test('property: a text a detector gate rules out is one that detector leaves unchanged', () => {
  const maskers = new Map(DETECTORS.map((d) => [d, single(d)] as const));
  const gates = new Map(DETECTORS.map((d) => [d, gateOf([d])] as const));
  fc.assert(
    fc.property(anyText, (t) => {
      for (const d of DETECTORS) {
        if (gates.get(d)?.(t) === true) continue;
        const r = maskers.get(d)?.maskText(t);
        assert.deepEqual(r, { text: t, masked: 0 }, `${d} gate ruled out ${JSON.stringify(t)}`);
      }
    }),
    { numRuns: 3000 },
  );
});

test('the gate of several detectors and literals: any of them lets a text through; none: ruled out', () => {
  const g = gateOf(['email', 'credit_card'], ['EMP-']);
  assert.equal(g('plain log line 2026-11-23T10:05:00Z order 100005\n'), false);
  assert.equal(g('mail alice@example.com'), true);
  assert.equal(g('card 4111 1111 1111 1111'), true);
  assert.equal(g('id EMP-123456'), true);
  // a pattern without a literal: every text may match, no gate
  assert.equal(textGate({ detectors: ['email'], literals: null }), undefined);
  assert.equal(textGate({ detectors: ['email'], literals: [''] }), undefined);
});

const everything = compileMasker(
  [
    { name: 'all', match: { detectors: DETECTORS }, action: { type: 'redact' } },
    { name: 'emp', match: { pattern: 'EMP-[0-9]{6}' }, action: { type: 'hash' } },
  ],
  KEY,
);
const everythingGate = gateOf(DETECTORS, ['EMP-']);

/** Splits t at the given points (taken modulo its length + 1). */
function chunksOf(t: string, cuts: readonly number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (t.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let last = 0;
  for (const p of [...points, t.length]) {
    out.push(t.slice(last, p));
    last = p;
  }
  return out;
}

function run(gate: TextGate | undefined, chunks: readonly string[], maxHeld: number): { text: string; masked: number } {
  const s = createStreamMasker((t) => everything.maskText(t), REDACTED, { maxHeld }, undefined, gate);
  const text = chunks.map((c) => s.push(c)).join('') + s.end();
  return { text, masked: s.masked };
}

test('property: a stream with the gate gives byte for byte the reference output, whatever the chunking', () => {
  fc.assert(
    fc.property(text, fc.array(fc.nat(), { maxLength: 12 }), fc.integer({ min: 160, max: 400 }), (t, cuts, maxHeld) => {
      const chunks = chunksOf(t, cuts);
      const fast = run(everythingGate, chunks, maxHeld);
      assert.deepEqual(fast, run(undefined, chunks, maxHeld));
    }),
    { numRuns: 1500 },
  );
});

test('a candidate split across chunk boundaries at every offset, in plain log text, is masked as the reference path masks it', () => {
  const log = '2026-11-23T10:05:00Z INFO worker-5 processed order 100005 in 5 ms status=ok\n';
  for (const secret of [...Object.values(POSITIVES).flat(), 'EMP-123456']) {
    const t = `${log.repeat(3)}pay ${secret} now\n${log}`;
    const want = run(undefined, [t], 64 * 1024);
    assert.notEqual(want.masked, 0, secret);
    for (let at = 1; at < t.length; at++) {
      // the carry-over: the chunk before the cut holds no candidate of its own
      for (const step of [at, 7]) {
        const chunks = chunksOf(t, [at, at + step, at + 2 * step]);
        assert.deepEqual(run(everythingGate, chunks, 64 * 1024), want, `${JSON.stringify(secret)} cut at ${at}, ${at + step}`);
      }
    }
  }
});

test('plain output without candidates passes unchanged through the gate, and the gate rules it out', () => {
  const log = '2026-11-23T10:05:00Z INFO worker-5 processed order 100005 in 5 ms status=ok\n'.repeat(500);
  assert.equal(textGate({ detectors: ['credit_card', 'email', 'aws_access_key', 'private_key'], literals: [] })?.(log), false);
  assert.deepEqual(run(everythingGate, chunksOf(log, [4096, 9000, 20000]), 64 * 1024), { text: everything.maskText(log).text, masked: everything.maskText(log).masked });
});
