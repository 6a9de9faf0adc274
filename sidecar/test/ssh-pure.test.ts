import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { verifyCast } from '@airlock/api';
import { AsciicastWriter, castEventLine, castHeaderLine } from '../src/record/asciicast.ts';
import { OutputDecoder, encodeOutput } from '../src/ssh/codec.ts';
import { isPinned, normalizeFingerprint, sha256Fingerprint } from '../src/ssh/fingerprint.ts';

test('fingerprints match ssh-keygen -lf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-fp-'));
  const key = join(dir, 'k');
  const gen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  const printed = spawnSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' }).stdout;
  const blob = Buffer.from(readFileSync(`${key}.pub`, 'utf8').split(' ')[1] ?? '', 'base64');
  const fp = sha256Fingerprint(blob);
  assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
  assert.ok(printed.includes(fp), `${printed} vs ${fp}`);
  assert.equal(normalizeFingerprint(printed), fp);
  assert.equal(normalizeFingerprint(`${fp}=`), fp);
  assert.equal(normalizeFingerprint('MD5:aa:bb'), undefined);
  assert.ok(isPinned(blob, ['SHA256:' + 'A'.repeat(43), fp]));
  assert.ok(!isPinned(blob, ['SHA256:' + 'A'.repeat(43)]));
  assert.ok(!isPinned(blob, []));
});

test('output codec: any bytes, any chunking, come back identical', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
      const data = Buffer.from(bytes);
      const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
      const dec = new OutputDecoder();
      let text = '';
      let last = 0;
      for (const p of [...points, data.length]) {
        text += dec.decode(data.subarray(last, p));
        last = p;
      }
      text += dec.end();
      assert.ok(encodeOutput(text).equals(data));
    }),
  );
});

test('output codec: valid UTF-8 is decoded as text, whatever the chunking', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.nat(), (s, cut) => {
      const data = Buffer.from(s, 'utf8');
      const at = cut % (data.length + 1);
      const dec = new OutputDecoder();
      const text = dec.decode(data.subarray(0, at)) + dec.decode(data.subarray(at)) + dec.end();
      assert.equal(text, s);
      assert.equal(dec.escaped, false);
    }),
  );
});

test('asciicast: header and events are asciicast v2', () => {
  assert.deepEqual(JSON.parse(castHeaderLine({ width: 80, height: 24, timestamp: 1700000000, title: 'ls' })), { version: 2, width: 80, height: 24, timestamp: 1700000000, title: 'ls' });
  assert.equal(castEventLine(1.2345678, 'o', 'hi\n'), '[1.234568, "o", "hi\\n"]');
  assert.equal(castEventLine(0, 'o', 'bad \udc80 byte'), '[0, "o", "bad \ufffd byte"]');
});

test('asciicast writer: checkpoints detect edits, truncation and appended data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cast-'));
  const path = join(dir, 's.0.cast');
  let now = 0;
  const w = new AsciicastWriter(path, { width: 80, height: 24, timestamp: 1 }, () => now);
  w.output('one\r\n');
  now = 1500;
  const mid = w.checkpoint();
  w.output('two\r\n');
  w.resize(100, 30);
  const final = w.close();
  const data = readFileSync(path);
  assert.equal(final.bytes, data.length);
  const lines = data.toString('utf8').trim().split('\n');
  assert.deepEqual(JSON.parse(lines[2] ?? ''), [1.5, 'o', 'two\r\n']);
  assert.deepEqual(JSON.parse(lines[3] ?? ''), [1.5, 'r', '100x30']);
  assert.deepEqual(verifyCast(data, [mid, final]), { ok: true });
  assert.equal(verifyCast(Buffer.from(data.toString('utf8').replace('two', 'tw0')), [mid, final]).ok, false);
  assert.equal(verifyCast(Buffer.from(data.toString('utf8').replace('one', 'on3')), [mid]).ok, false);
  const cut = verifyCast(data.subarray(0, data.length - 1), [mid, final]);
  assert.equal(cut.ok, false);
  assert.match(cut.message ?? '', /truncated/);
  assert.equal(verifyCast(Buffer.concat([data, Buffer.from('[9, "o", "x"]\n')]), [mid, final]).ok, false);
  assert.equal(verifyCast(data, []).ok, false);
  writeFileSync(path, data);
});

test('asciicast writers: interleaved events of any text and size are written and hashed exactly', () => {
  // the writers encode every event line into one buffer they share: interleaving writers and
  // events larger than that buffer must still give each file exactly its own lines
  const dir = mkdtempSync(join(tmpdir(), 'airlock-casts-'));
  let n = 0;
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.string({ unit: fc.constantFrom('a', '\n', '\r', '"', '\\', '\u0001', '\udc80', '\u00e9', '\u20ac', '\ud83d\ude00'), maxLength: 2000 }),
    fc.constantFrom(200_000, 400_000).map((len) => 'x\n\u20ac'.repeat(len)),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(2), text), { maxLength: 12 }), (events) => {
      const writers = [0, 1, 2].map((i) => new AsciicastWriter(join(dir, `${String(n)}.${String(i)}.cast`), { width: 80, height: 24, timestamp: 1 }, () => 0));
      n++;
      const expected = writers.map(() => [castHeaderLine({ width: 80, height: 24, timestamp: 1 })]);
      for (const [i, t] of events) {
        writers[i]?.output(t);
        if (t !== '') expected[i]?.push(castEventLine(0, 'o', t));
      }
      writers.forEach((w, i) => {
        const final = w.close();
        const data = readFileSync(w.path);
        assert.equal(data.toString('utf8'), `${(expected[i] ?? []).join('\n')}\n`);
        assert.equal(final.bytes, data.length);
        assert.equal(final.sha256, `sha256:${createHash('sha256').update(data).digest('hex')}`);
      });
    }),
    { numRuns: 60 },
  );
});

test('agent host keys always parse (ssh2 occasionally generates one it cannot read back)', async () => {
  const { agentHostKey } = await import('../src/ssh/proxy.ts');
  const ssh2 = (await import('ssh2')).default;
  for (let i = 0; i < 400; i++) assert.ok(!(ssh2.utils.parseKey(agentHostKey()) instanceof Error));
});
