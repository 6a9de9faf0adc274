import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compileMasker } from '@airlock/policy';
import { SidecarError } from '../src/errors.ts';
import { MaskedOutput } from '../src/ssh/output.ts';

const masker = compileMasker(
  [
    { name: 'email', match: { detectors: ['email'] }, action: { type: 'redact' } },
    { name: 'card', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
  ],
  Buffer.from('k'),
);

/** Feeds `data` in the given pieces; returns the bytes the agent gets (or the error thrown). */
function relay(out: MaskedOutput, data: Buffer, cuts: readonly number[]): Buffer {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let last = 0;
  for (const p of [...points, data.length]) {
    parts.push(out.encode(out.push(data.subarray(last, p))));
    last = p;
  }
  parts.push(out.encode(out.end()));
  return Buffer.concat(parts);
}

test('text output is masked, whatever the chunking', () => {
  const data = Buffer.from('user alice@example.com paid with 4111 1111 1111 1111\nok\n');
  for (const cut of [1, 7, 20, 30]) {
    const got = relay(new MaskedOutput(masker.stream()), data, [cut, cut * 2]).toString('utf8');
    assert.equal(got, masker.maskText(data.toString('utf8')).text);
    assert.ok(!got.includes('alice@'));
  }
});

test('binaryOutput Refuse: output that is not text stops the stream with a clear message, never altered output', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.array(fc.nat(), { maxLength: 5 }), (bytes, cuts) => {
      const data = Buffer.from(bytes);
      const text = data.toString('utf8');
      const binary = data.includes(0) || Buffer.compare(Buffer.from(text, 'utf8'), data) !== 0;
      const out = new MaskedOutput(masker.stream(), 'Refuse');
      let got: Buffer | undefined;
      try {
        got = relay(out, data, cuts);
      } catch (err) {
        assert.ok(binary, 'only binary output is refused');
        assert.ok(err instanceof SidecarError && err.code === 'NotPermitted');
        assert.match(err.message, /output is not text \((a NUL byte at byte \d+|bytes that are not UTF-8 text from byte \d+ on|an incomplete UTF-8 character in its last bytes)\).*binaryOutput is Refuse/);
        return;
      }
      assert.ok(!binary, 'binary output is never relayed under Refuse');
      assert.equal(got.toString('utf8'), masker.maskText(text).text);
    }),
    { numRuns: 500 },
  );
});

test('binaryOutput Refuse: the NUL byte is located', () => {
  const out = new MaskedOutput(masker.stream(), 'Refuse');
  assert.equal(out.push(Buffer.from('abc\n')), 'abc\n');
  assert.throws(() => out.push(Buffer.from('de\0f')), /a NUL byte at byte 6/);
});

test('binaryOutput Pass: any bytes arrive byte for byte once binary; text before it is masked', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
      // a NUL first: the stream is binary from its first byte
      const data = Buffer.concat([Buffer.of(0), Buffer.from(bytes), Buffer.from(' alice@example.com\n')]);
      const out = new MaskedOutput(masker.stream(), 'Pass');
      assert.ok(relay(out, data, cuts).equals(data));
      assert.equal(out.raw, true);
    }),
    { numRuns: 500 },
  );
  const out = new MaskedOutput(masker.stream(), 'Pass');
  const head = out.encode(out.push(Buffer.from('mail bob@example.com\npartial carol@example.com ')));
  const rest = out.encode(out.push(Buffer.from([0xff, 0x00, 0x41])));
  assert.equal(head.toString('utf8'), 'mail [REDACTED]\n');
  assert.ok(rest.equals(Buffer.concat([Buffer.from('partial [REDACTED] '), Buffer.from([0xff, 0x00, 0x41])])));
});

test('binaryOutput Pass: text that shares a chunk with the first binary byte is still masked, whatever the chunking', () => {
  const text = 'card 4111 1111 1111 1111\nmail bob@example.com\n';
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 4 }), (bytes, cuts) => {
      const binary = Buffer.concat([Buffer.of(0xff), Buffer.from(bytes)]);
      const data = Buffer.concat([Buffer.from(text), binary]);
      const got = relay(new MaskedOutput(masker.stream(), 'Pass'), data, cuts);
      const head = Buffer.from(masker.maskText(text).text);
      assert.ok(got.subarray(0, head.length).equals(head), got.subarray(0, head.length).toString());
      assert.ok(got.subarray(head.length).equals(binary));
    }),
    { numRuns: 500 },
  );
  // one chunk: the text and a NUL
  const out = new MaskedOutput(masker.stream(), 'Pass');
  const got = out.encode(out.push(Buffer.from('mail bob@example.com\n\0x')));
  assert.ok(got.equals(Buffer.from('mail [REDACTED]\n\0x')));
});

test('several MB of random bytes under Pass come back identical', () => {
  const data = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const out = new MaskedOutput(masker.stream(), 'Pass');
  // SSH packet-sized chunks, plus a few odd cuts
  const cuts = [...Array.from({ length: 128 }, (_, i) => i * 32 * 1024), 7, 70_001, 1_000_003];
  assert.ok(relay(out, data, cuts).equals(data));
});
