/**
 * The asciicast writer writes each event in its parts into one shared buffer: its file must be
 * byte for byte the lines castEventLine makes (the format players and `sessions verify` read),
 * for any text (control characters, quotes, non-ASCII, lone surrogates), and its checkpoints
 * must verify.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { verifyCast } from '@airlock/api';
import { AsciicastWriter, castEventLine, castHeaderLine } from '../src/record/asciicast.ts';

/** The event line as asciicast.ts wrote it before the parts were written separately. */
const reference = (seconds: number, code: string, data: string): string =>
  `[${(Math.round(seconds * 1e6) / 1e6).toString()}, ${JSON.stringify(code)}, ${JSON.stringify(data.toWellFormed())}]`;

const texts = fc.oneof(
  fc.string({ maxLength: 200, unit: 'binary' }),
  fc.string({ maxLength: 200, unit: fc.constantFrom('a', ' ', '\n', '\r', '\t', '"', '\\', '\x1b', '\x7f', 'é', '\u2028', '\uD83D', '\uDE80', '\uDC80', '\0') }),
  fc.constantFrom('2026-11-23T10:05:00Z INFO ok\n'.repeat(3000), 'x'.repeat(70_000), '"\\'.repeat(40_000)),
);

test('property: the cast file is the header and castEventLine of each event, byte for byte; its checkpoints verify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cast-'));
  let n = 0;
  try {
    fc.assert(
      fc.property(fc.array(fc.tuple(texts, fc.integer({ min: 0, max: 10_000_000 })), { maxLength: 8 }), (events) => {
        const path = join(dir, `${String(n++)}.cast`);
        let now = 0;
        const header = { width: 80, height: 24, timestamp: 1 };
        const w = new AsciicastWriter(path, header, () => now);
        const want = [`${castHeaderLine(header)}\n`];
        const checkpoints = [];
        for (const [text, ms] of events) {
          now += ms / 1000;
          w.output(text);
          if (text !== '') want.push(`${reference(now / 1000, 'o', text)}\n`);
          checkpoints.push(w.checkpoint());
        }
        w.resize(100, 40);
        want.push(`${reference(now / 1000, 'r', '100x40')}\n`);
        checkpoints.push(w.close());
        const data = readFileSync(path);
        assert.ok(data.equals(Buffer.from(want.join(''), 'utf8')));
        assert.equal(castEventLine(now / 1000, 'o', events[0]?.[0] ?? 'x'), reference(now / 1000, 'o', events[0]?.[0] ?? 'x'));
        assert.deepEqual(verifyCast(data, checkpoints), { ok: true });
        rmSync(path);
      }),
      { numRuns: 150 },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an event too long for the shared buffer is written whole, as castEventLine makes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cast-'));
  try {
    const path = join(dir, 'big.cast');
    const header = { width: 80, height: 24, timestamp: 1 };
    const w = new AsciicastWriter(path, header, () => 0);
    const big = '"\\\n\uDC80é'.repeat(120_000);
    w.output(big);
    w.output('after');
    const cp = w.close();
    const data = readFileSync(path);
    assert.ok(data.equals(Buffer.from(`${castHeaderLine(header)}\n${reference(0, 'o', big)}\n${reference(0, 'o', 'after')}\n`, 'utf8')));
    assert.deepEqual(verifyCast(data, [cp]), { ok: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
