/**
 * Secrets glued to other text (issue 15, item 7): a card number, IBAN, key or token with
 * letters, digits, `_` or `=` glued on either side is still found, by detect(), by maskText,
 * by maskValue and by the streaming masker whatever the chunking. The only glue that may stop a
 * value is what continues it: a digit next to a number (a longer number is not a card).
 */
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DETECTORS, type Detector } from '@airlock/api';
import { IBAN_LENGTHS, detect } from '../src/mask/detectors.ts';
import { REDACTED, compileMasker, type Masker } from '../src/mask/masker.ts';

const KEY = new TextEncoder().encode('glued-test-key');
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const JWT = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890","iat":1516239022}')}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;

interface Secret {
  readonly detector: Detector;
  /** the text put between the glue */
  readonly text: string;
  /** the part of `text` that must be masked (the token after "Bearer ", a URL's password) */
  readonly core: string;
  /** a number: glue next to it starts and ends with a non-digit (a digit would make a longer number) */
  readonly numeric: boolean;
}

const secret = (detector: Detector, text: string, opts: { core?: string; numeric?: boolean } = {}): Secret => ({
  detector,
  text,
  core: opts.core ?? text,
  numeric: opts.numeric ?? false,
});

const SECRETS: readonly Secret[] = [
  secret('credit_card', '4539148803436467', { numeric: true }),
  secret('credit_card', '4539-1488-0343-6467', { numeric: true }),
  secret('credit_card', '4111 1111 1111 1111', { numeric: true }),
  secret('credit_card', '378282246310005', { numeric: true }),
  secret('iban', 'DE89370400440532013000'),
  secret('iban', 'DE89 3704 0044 0532 0130 00'),
  secret('iban', 'GB82WEST12345698765432'),
  secret('iban', 'fr1420041010050500013m02606'),
  secret('us_ssn', '078-05-1120', { numeric: true }),
  secret('phone', '+4915112345678', { numeric: true }),
  secret('phone', '555-123-4567', { numeric: true }),
  secret('ip_address', '10.20.30.40', { numeric: true }),
  secret('aws_access_key', 'AKIAIOSFODNN7EXAMPLE'),
  secret('aws_access_key', 'ASIAY34FZKBOKMUTVV7A'),
  secret('github_token', `ghp_${'aB3'.repeat(12)}`),
  secret('github_token', `github_pat_${'11ABCDEFG0'.repeat(2)}01_${'xY9'.repeat(19)}Zz`),
  secret('slack_token', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'),
  secret('jwt', JWT),
  secret('bearer_token', 'Bearer abcDEF0123456789xyzTOKEN', { core: 'abcDEF0123456789xyzTOKEN' }),
  secret('email', 'john.doe@example.com', { core: 'john.doe@example' }),
  secret('url_credentials', 'postgres://app:s3cretpass@db/x', { core: 's3cretpass' }),
];

const GLUE_CHARS = Array.from('abcxyzAKIADEGBQ0123456789_=e');
const WORD_CHARS = GLUE_CHARS.filter((c) => !/[0-9]/.test(c));
/** Random glue; next to a number the character touching it is not a digit. */
const glue = (touchesNumber: boolean, side: 'left' | 'right'): fc.Arbitrary<string> =>
  fc
    .tuple(fc.string({ unit: fc.constantFrom(...GLUE_CHARS), maxLength: 12 }), fc.constantFrom(...(touchesNumber ? WORD_CHARS : GLUE_CHARS)))
    .map(([body, edge]) => (side === 'left' ? body + edge : edge + body));

const gluedCase = fc
  .constantFrom(...SECRETS)
  .chain((s) => fc.tuple(fc.constant(s), glue(s.numeric, 'left'), glue(s.numeric, 'right')));

const allDetectors = (): Masker =>
  compileMasker(
    [
      { name: 'all', match: { detectors: DETECTORS }, action: { type: 'redact' } },
      { name: 'emp', match: { pattern: 'EMP-[0-9]{6}' }, action: { type: 'hash' } },
    ],
    KEY,
  );

/** Whether one span of detect() covers text[at, at + length). */
const covered = (text: string, d: Detector, at: number, length: number): boolean =>
  detect(text, d).some((s) => s.start <= at && at + length <= s.end);

test('property: a secret with random letters, digits, `_` or `=` glued on both sides is found and masked', () => {
  const m = allDetectors();
  fc.assert(
    fc.property(gluedCase, ([s, left, right]) => {
      const text = `${left}${s.text}${right}`;
      const at = left.length + s.text.indexOf(s.core);
      assert.ok(covered(text, s.detector, at, s.core.length), `${s.detector} not found in ${JSON.stringify(text)}: ${JSON.stringify(detect(text, s.detector))}`);
      const masked = m.maskText(text).text;
      assert.ok(!masked.includes(s.core), `maskText left ${JSON.stringify(s.core)} in ${JSON.stringify(masked)}`);
      assert.ok(masked.includes(REDACTED));
      const value = m.maskValue('public.t.c', text).value ?? '';
      assert.ok(!value.includes(s.core), `maskValue left ${JSON.stringify(s.core)} in ${JSON.stringify(value)}`);
    }),
    { numRuns: 3000 },
  );
});

test('glued examples from the issue are masked in free text and in values', () => {
  const m = allDetectors();
  const texts: [string, string][] = [
    ['x4539148803436467', '4539148803436467'],
    ['card4539-1488-0343-6467end', '4539-1488-0343-6467'],
    ['ibanDE89370400440532013000', 'DE89370400440532013000'],
    ['AWS_SECRET_AKIAIOSFODNN7EXAMPLE_x', 'AKIAIOSFODNN7EXAMPLE'],
    ['token=ghp_aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3=', 'ghp_aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3'],
    ['ASIAAKIAIOSFODNN7EXAMPLE', 'IOSFODNN7EXAMPLE'], // glue that itself looks like a key's start
  ];
  for (const [text, secretText] of texts) {
    assert.equal(m.maskText(text).text.includes(secretText), false, text);
    assert.equal(m.maskValue(undefined, text).value?.includes(secretText), false, text);
    // the statement text path (what recordings and approval requests show): the rest stays
    const sql = `SELECT '${text}' AS v`;
    const shown = m.maskText(sql).text;
    assert.ok(!shown.includes(secretText) && shown.startsWith("SELECT '") && shown.endsWith("' AS v"), shown);
  }
});

test('property: glue never makes a digit run that is not a card, or random glued text, a detector match it was not', () => {
  // Random text of the glue alphabet and digits: every credit_card / iban span found must pass
  // the checks a standalone value passes (Luhn, mod-97), so detect() of the span alone finds it.
  const text = fc.string({ unit: fc.constantFrom(...GLUE_CHARS, '4', '5', ' ', '-'), maxLength: 80 });
  fc.assert(
    fc.property(text, (t) => {
      for (const d of ['credit_card', 'iban', 'aws_access_key', 'us_ssn'] as const) {
        for (const s of detect(t, d)) {
          const alone = t.slice(s.start, s.end);
          assert.deepEqual(
            detect(alone, d).map((x) => alone.slice(x.start, x.end)),
            [alone],
            `${d}: ${JSON.stringify(alone)} in ${JSON.stringify(t)}`,
          );
        }
      }
    }),
    { numRuns: 5000 },
  );
});

test('false positives stay rare in hex and base64 text (SHA-256 digests, one per line and glued together)', () => {
  const digests = (encoding: 'hex' | 'base64', sep: string): string =>
    Array.from({ length: 20_000 }, (_, i) => createHash('sha256').update(String(i)).digest(encoding)).join(sep);
  const texts = { 'hex lines': digests('hex', '\n'), 'hex glued': digests('hex', ''), 'HEX glued': digests('hex', '').toUpperCase(), base64: digests('base64', '') };
  // Measured: 11-14 Luhn-valid card numbers (of 20,000 digests: 0.07%), nothing else.
  const bound: Partial<Record<Detector, number>> = { credit_card: 30 };
  for (const [name, text] of Object.entries(texts)) {
    for (const d of DETECTORS) {
      const n = detect(text, d).length;
      assert.ok(n <= (bound[d] ?? 0), `${name} ${d}: ${String(n)} spans`);
    }
  }
});

test('the IBAN formats give every country its registry length', () => {
  const lengths = {
    AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22,
    CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22,
    GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30,
    KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27,
    MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SC: 31,
    SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
  };
  assert.deepEqual(Object.fromEntries(IBAN_LENGTHS), lengths);
  // registry examples of formats with letters in the BBAN: still found; a letter where the format wants a digit: not
  for (const iban of ['GB29NWBK60161331926819', 'MU17BOMM0101101030300200000MUR', 'SC18SSCB11010000000000001497USD', 'BR1800360305000010009795493C1', 'IT60X0542811101000000123456']) {
    assert.deepEqual(detect(`x${iban}y`, 'iban').length, 1, iban);
  }
  assert.deepEqual(detect('DE89370400440532O13000', 'iban'), []);
});

const streamed = (m: Masker, chunks: readonly string[], maxHeld?: number): string => {
  const s = m.stream(maxHeld === undefined ? {} : { maxHeld });
  return chunks.map((c) => s.push(c)).join('') + s.end();
};

/** text cut at the given offsets (taken modulo its length), in order */
const splitAt = (text: string, cutsRaw: readonly number[]): string[] => {
  const cuts = [...new Set(cutsRaw.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  return [0, ...cuts].map((c, i) => text.slice(c, [...cuts, text.length][i]));
};

/** The longest union of overlapping spans of all detectors in text. */
function longestSpan(text: string): number {
  const spans = DETECTORS.flatMap((d) => detect(text, d)).sort((a, b) => a.start - b.start);
  let longest = 0;
  let start = -1;
  let end = -1;
  for (const s of spans) {
    if (s.start >= end) start = s.start;
    end = Math.max(end, s.end);
    longest = Math.max(longest, end - start);
  }
  return longest;
}

test('property: the streaming masker finds glued secrets whatever the chunking, in short and in over-long lines', () => {
  const m = allDetectors();
  const line = fc.array(fc.tuple(gluedCase, fc.constantFrom('', ' ', '\n', 'zz')), { minLength: 1, maxLength: 6 });
  fc.assert(
    fc.property(line, fc.array(fc.nat(), { maxLength: 16 }), fc.constantFrom(undefined, 160, 300), fc.nat(400), (parts, cutsRaw, maxHeld, padLength) => {
      // an over-long line when maxHeld is set: glued padding without blanks around the secrets
      const pad = maxHeld === undefined ? '' : '#'.repeat(padLength);
      const text = pad + parts.map(([[s, left, right], sep]) => `${left}${s.text}${right}${sep}`).join('') + pad;
      const want = m.maskText(text).text;
      const out = streamed(m, splitAt(text, cutsRaw), maxHeld);
      // equal to maskText unless a masked span is longer than half the limit (then the stream
      // replaces it with one marker through the end of its line: stream.ts)
      if (maxHeld === undefined || longestSpan(text) < maxHeld / 2) assert.equal(out, want);
      for (const [[s]] of parts) assert.ok(!out.includes(s.core), `${JSON.stringify(s.core)} in ${JSON.stringify(out)}`);
    }),
    { numRuns: 1500 },
  );
});

test('a glued secret straddling every chunk boundary offset is masked in the stream', () => {
  const m = allDetectors();
  for (const s of SECRETS) {
    const text = `log x${s.text}y end\nnext_${s.text}_line\n`;
    const want = m.maskText(text).text;
    for (let k = 0; k <= text.length; k++) {
      for (const step of [1, 3, 7]) {
        const chunks = [text.slice(0, k)];
        for (let i = k; i < text.length; i += step) chunks.push(text.slice(i, i + step));
        const out = streamed(m, chunks);
        assert.equal(out, want, `${s.text} cut at ${String(k)} step ${String(step)}`);
        assert.ok(!out.includes(s.core));
      }
    }
  }
});
