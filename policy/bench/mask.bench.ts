/**
 * Micro benchmark of the masking library: MB/s (UTF-8 bytes) of
 *   - free text with no match (prose, and log lines full of digits), all 13 detectors on;
 *   - SQL values with no match, and with every value matching;
 *   - streaming log text in 4 KiB chunks, with and without secrets.
 * Run from the repository root: node_modules/.bin/node policy/bench/mask.bench.ts
 */
import { DETECTORS } from '@airlock/api';
import { compileMasker, type MaskRuleSpec } from '../src/mask/masker.ts';

const allDetectors: MaskRuleSpec = { name: 'all', match: { detectors: DETECTORS }, action: { type: 'redact' } };
const rules: MaskRuleSpec[] = [
  allDetectors,
  { name: 'emails', match: { columns: ['*.customers.email'] }, action: { type: 'partial', keepFirst: 2 } },
  { name: 'notes', match: { columns: ['*.*.notes'], detectors: ['email', 'phone'] }, action: { type: 'hash' } },
];
const masker = compileMasker(rules, new TextEncoder().encode('bench-key'));
const withPattern = compileMasker([...rules, { name: 'pat', match: { pattern: 'secret-[0-9a-f]{8}' }, action: { type: 'redact' } }], new Uint8Array(8));

const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
const SIZE = 1 << 20;

function build(line: (i: number) => string): string {
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < SIZE; i++) {
    const l = line(i);
    parts.push(l);
    n += l.length;
  }
  return parts.join('');
}

const prose = build((i) => `${WORDS[(i * 7) % WORDS.length] ?? ''}${i % 13 === 12 ? '.\n' : ' '}`);
const logs = build(
  (i) => `2024-01-15T10:${String(i % 60).padStart(2, '0')}:07Z INFO request id=${i * 7919} took ${i % 997}ms status=200 path=/api/v1/items/${i}\n`,
);
const secrets = build(
  (i) => `2024-01-15T10:00:00Z user=u${i}@example.com card 4111 1111 1111 1111 from 10.0.${i % 256}.7 key AKIAIOSFODNN7EXAMPLE\n`,
);

const bytes = (s: string): number => new TextEncoder().encode(s).length;

/** MB/s of running fn over a workload of `size` bytes, best of several rounds. */
function rate(size: number, fn: () => void): number {
  fn(); // warm-up
  let best = Infinity;
  for (let round = 0; round < 7; round++) {
    const t0 = performance.now();
    let n = 0;
    do {
      fn();
      n++;
    } while (performance.now() - t0 < 200);
    best = Math.min(best, (performance.now() - t0) / n);
  }
  return size / 1e6 / (best / 1000);
}

/** Values as the PostgreSQL wire decoder produces them: flat strings decoded from bytes. */
function values(make: (i: number) => string): string[] {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  return Array.from({ length: 50_000 }, (_, i) => decoder.decode(encoder.encode(make(i))));
}
const plainValues = values((i) => [`${WORDS[i % WORDS.length] ?? ''} ${WORDS[(i * 3) % WORDS.length] ?? ''}`, String(i * 31), '2024-01-15', `order #${i}`][i % 4] ?? '');
const emailValues = values((i) => `customer${i}@example.com`);
const mixedValues = values((i) => [`customer${i}@example.com`, '4111 1111 1111 1111', `+1 (555) 123-${String(i % 10000).padStart(4, '0')}`][i % 3] ?? '');
const noteValues = values((i) => `Customer called on 2024-01-15 about order #${i}; reach them at c${i}@example.com or +44 20 7946 ${String(i % 10000).padStart(4, '0')}.`);
const sum = (vs: string[]): number => vs.reduce((a, v) => a + bytes(v), 0);

function streamAll(m: typeof masker, text: string): void {
  const s = m.stream();
  for (let i = 0; i < text.length; i += 4096) s.push(text.slice(i, i + 4096));
  s.end();
}

const check = (cond: boolean, what: string): void => {
  if (!cond) throw new Error(`bench precondition failed: ${what}`);
};
check(masker.maskText(prose).masked === 0 && masker.maskText(logs).masked === 0, 'no-match texts have no match');
check(plainValues.every((v) => masker.maskValue('public.orders.note', v).masked === 0), 'plain values have no match');
check(emailValues.every((v) => masker.maskValue('public.customers.email', v).masked === 1), 'every email value matches');
check(mixedValues.every((v) => masker.maskValue('public.orders.note', v).masked >= 1), 'every mixed value matches');
check(noteValues.every((v) => masker.maskValue('public.orders.notes', v).masked === 2), 'every note has two matches');

const overValues = (vs: string[], column: string, m = masker) => (): void => {
  for (const v of vs) m.maskValue(column, v);
};
const results: [string, number][] = [
  ['text, no match (prose)', rate(bytes(prose), () => masker.maskText(prose))],
  ['text, no match (logs, digits)', rate(bytes(logs), () => masker.maskText(logs))],
  ['text, no match (logs) + RE2 pattern', rate(bytes(logs), () => withPattern.maskText(logs))],
  ['text, 4 secrets per line', rate(bytes(secrets), () => masker.maskText(secrets))],
  ['values, no match (all detectors)', rate(sum(plainValues), overValues(plainValues, 'public.orders.note'))],
  ['values, no match + RE2 pattern', rate(sum(plainValues), overValues(plainValues, 'public.orders.note', withPattern))],
  ['values, every one matches (column rule)', rate(sum(emailValues), overValues(emailValues, 'public.customers.email'))],
  ['values, every one matches (detectors)', rate(sum(mixedValues), overValues(mixedValues, 'public.orders.note'))],
  ['values, every one matches (hash)', rate(sum(mixedValues), overValues(mixedValues, 'public.orders.notes'))],
  ['values, 120-byte notes, 2 matches each', rate(sum(noteValues), overValues(noteValues, 'public.orders.notes'))],
  ['stream, logs, no match, 4 KiB chunks', rate(bytes(logs), () => {
    streamAll(masker, logs);
  })],
  ['stream, 4 secrets per line, 4 KiB chunks', rate(bytes(secrets), () => {
    streamAll(masker, secrets);
  })],
];
for (const [name, mbps] of results) console.log(`${name.padEnd(44)} ${mbps.toFixed(0).padStart(6)} MB/s`);
