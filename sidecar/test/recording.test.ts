import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { GENESIS, recordingText, seal, verifyRecording } from '@airlock/api';
import { RecordingWriter, RecorderError } from '../src/record/writer.ts';

function recording(): { path: string; text: string; head: string } {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
  const path = join(dir, 'session.jsonl');
  const w = new RecordingWriter(path);
  w.append({ type: 'session_start', connection: 'orders-db', protocol: 'postgres', client: '127.0.0.1:50000' });
  w.append({ type: 'statement', text: 'SELECT * FROM orders', decision: 'Allow', rules: [] });
  w.flush();
  w.append({ type: 'result', tag: 'SELECT 3', rows: 3, masked: 1 });
  w.append({ type: 'statement', text: 'DROP TABLE orders', decision: 'Block', rules: ['prod-guardrails/never-destroy'] });
  w.append({ type: 'session_end', reason: 'client closed', statements: 2, blocked: 1 });
  w.close();
  return { path, text: readFileSync(path, 'utf8'), head: w.head };
}

test('an intact recording verifies and its head is the writer\'s head', () => {
  const { text, head } = recording();
  const r = verifyRecording(text, { endTypes: ['session_end'], expectedHead: head });
  assert.deepEqual(r, { ok: true, records: 5, head });
});

for (const mapped of [true, false]) {
  test(`records reach the file at flush, before close (write-ahead), ${mapped ? 'through the mapping' : 'with write(2)'}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
    const path = join(dir, 's.jsonl');
    const w = new RecordingWriter(path, { mapped });
    w.append({ type: 'statement', text: 'DELETE FROM t WHERE id = 1', decision: 'Allow' });
    if (mapped) assert.match(readFileSync(path, 'utf8'), /"text":"DELETE FROM t WHERE id = 1"/, 'a mapped record is in the file as soon as it is appended');
    else assert.equal(readFileSync(path, 'utf8'), '', 'queued, not yet written');
    w.flush();
    const text = readFileSync(path, 'utf8');
    assert.match(text, /"text":"DELETE FROM t WHERE id = 1"/);
    assert.equal(verifyRecording(text).ok, true);
    w.append({ type: 'session_end' });
    w.close();
    const closed = readFileSync(path, 'utf8');
    assert.equal(closed, recordingText(closed), 'closed: no padding left');
    assert.equal(verifyRecording(closed, { endTypes: ['session_end'], expectedHead: w.head }).ok, true);
  });
}

test('every record flushed before the process is killed (SIGKILL) is in the recording, and it verifies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
  const path = join(dir, 'killed.jsonl');
  const script = `
    import { RecordingWriter } from ${JSON.stringify(new URL('../src/record/writer.ts', import.meta.url).href)};
    const w = new RecordingWriter(${JSON.stringify(path)});
    for (let i = 1; i <= 500; i++) { w.append({ type: 'statement', id: i, text: 'SELECT ' + i }); w.flush(); }
    w.append({ type: 'result', statement: 500 }); // never flushed: in the page cache all the same
    process.kill(process.pid, 'SIGKILL');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(r.signal, 'SIGKILL');
  const raw = readFileSync(path, 'utf8');
  const v = verifyRecording(raw);
  assert.equal(v.ok, true, v.error?.message);
  assert.equal(v.records, 501, 'the mapped writer stores each record as it is appended');
  assert.equal(verifyRecording(raw, { endTypes: ['session_end'] }).ok, false, 'and it shows as cut short');
});

test('a NUL inside a recording is not padding: it fails verification', () => {
  const { text } = recording();
  const l = text.split('\n');
  const withNul = [l[0], `${l[1] ?? ''}\u0000`, ...l.slice(2)].join('\n');
  assert.equal(verifyRecording(withNul).ok, false);
  assert.equal(verifyRecording(`${text}\u0000\u0000\u0000`, { endTypes: ['session_end'] }).ok, true, 'trailing zeros are padding');
});

function lines(text: string): string[] {
  return text.trimEnd().split('\n');
}

test('an edited record is detected, naming it', () => {
  const { text } = recording();
  const edited = text.replace('DROP TABLE orders', 'SELECT 1');
  assert.deepEqual(verifyRecording(edited).error, { line: 4, message: 'hash does not match its content (the record was edited)' });
  const decision = text.replace('"decision":"Block"', '"decision":"Allow"');
  assert.equal(verifyRecording(decision).error?.line, 4);
});

test('a removed, inserted or reordered record is detected', () => {
  const { text } = recording();
  const l = lines(text);
  const removed = [l[0], l[1], l[3], l[4]].join('\n');
  assert.equal(verifyRecording(removed).error?.line, 3);
  const swapped = [l[0], l[2], l[1], l[3], l[4]].join('\n');
  assert.equal(verifyRecording(swapped).error?.line, 2);
  const duplicated = [l[0], l[1], l[1], l[2], l[3], l[4]].join('\n');
  assert.equal(verifyRecording(duplicated).error?.line, 3);
});

test('truncation is detected by the missing end record and by the anchored head', () => {
  const { text, head } = recording();
  const l = lines(text);
  const cut = l.slice(0, 3).join('\n');
  assert.match(verifyRecording(cut, { endTypes: ['session_end'] }).error?.message ?? '', /truncated or the session is still open/);
  assert.match(verifyRecording(cut, { expectedHead: head }).error?.message ?? '', /not the anchored head/);
  const midWrite = text.slice(0, text.length - 20);
  assert.match(verifyRecording(midWrite).error?.message ?? '', /incomplete last line/);
  assert.match(verifyRecording('').error?.message ?? '', /empty/);
});

test('an AgentSession anchor: a live session\'s lags behind, an ended session\'s is the last record', () => {
  const { text } = recording();
  const l = lines(text);
  const at = (n: number): string => (JSON.parse(l[n - 1] ?? '{}') as { hash: string }).hash;
  const n = l.length;
  // live: anchored at record 3, the recording went on
  assert.equal(verifyRecording(text, { anchor: { head: at(3), records: 3, final: false } }).ok, true);
  // ended: anchored at the last record
  assert.equal(verifyRecording(text, { anchor: { head: at(n), records: n, final: true } }).ok, true);
  // truncated below the anchor
  assert.match(verifyRecording(l.slice(0, 2).join('\n'), { anchor: { head: at(3), records: 3, final: false } }).error?.message ?? '', /truncated/);
  // records appended after an ended session's anchor
  assert.match(verifyRecording(text, { anchor: { head: at(n - 1), records: n - 1, final: true } }).error?.message ?? '', /follow the anchored end/);
  // a recording replaced by another valid chain does not reach the anchored hash
  const other = recording().text;
  assert.match(verifyRecording(other, { anchor: { head: at(3), records: 3, final: false } }).error?.message ?? '', /not the anchored head/);
});

test('a forged record cannot claim Airlock\'s fields', () => {
  const s = seal({ type: 'x', seq: 99, prev: 'forged', hash: 'forged' }, 1, GENESIS);
  const rec = JSON.parse(s.line) as { seq: number; prev: string };
  assert.equal(rec.seq, 1);
  assert.equal(rec.prev, GENESIS);
  assert.equal(verifyRecording(s.line).ok, true);
});

test('property: a sealed line is the JSON of seq, time, the body\'s fields in order, prev and hash, and verifies', () => {
  // (integer-like keys would be ordered first by an object literal: records have none)
  const key = fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== '__proto__' && !/^[0-9]+$/.test(k));
  const value = fc.oneof(fc.string({ unit: 'binary' }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }));
  fc.assert(
    fc.property(fc.dictionary(key, value, { maxKeys: 6 }), fc.option(fc.constant('2026-12-01T10:00:00.000Z'), { nil: undefined }), (extra, time) => {
      const body = { type: 'statement', ...extra };
      const s = seal(body, 1, GENESIS, time);
      const rest = Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'seq' && k !== 'prev' && k !== 'hash'));
      const want = { seq: 1, ...(time !== undefined ? { time } : {}), ...rest, prev: GENESIS, hash: s.hash };
      assert.equal(s.line, JSON.stringify(want));
      assert.equal(verifyRecording(s.line).ok, true);
    }),
    { numRuns: 500 },
  );
});

test('property: the mapped writer (records sealed natively) writes the very bytes of the write(2) writer', () => {
  const d = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
  let n = 0;
  const key = fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== '__proto__' && !/^[0-9]+$/.test(k));
  const value = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string({ unit: 'binary' }), { maxLength: 3 }));
  const body = fc.record({ type: fc.constantFrom('statement', 'result', 'session_end'), extra: fc.dictionary(key, value, { maxKeys: 5 }), time: fc.option(fc.constant('2026-12-01T10:00:00.000Z'), { nil: undefined }) });
  fc.assert(
    fc.property(fc.array(body, { minLength: 1, maxLength: 30 }), (bodies) => {
      const a = join(d, `m${String(n)}.jsonl`);
      const b = join(d, `w${String(n++)}.jsonl`);
      const mapped = new RecordingWriter(a, { mapped: true });
      const plain = new RecordingWriter(b, { mapped: false });
      for (const x of bodies) {
        // the same time for both: the writer's own clock would differ between the two calls
        const rec = { type: x.type, ...x.extra, time: x.time ?? '2026-12-01T11:00:00.000Z' };
        assert.equal(mapped.append(rec), plain.append(rec));
        mapped.flush();
        plain.flush();
      }
      mapped.close();
      plain.close();
      assert.equal(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
      assert.equal(verifyRecording(readFileSync(a, 'utf8')).ok, true);
    }),
    { numRuns: 300 },
  );
});

test('a natively sealed record is seal()\'s line for any sequence number', async () => {
  const { openMappedFile } = await import('@airlock/native');
  const path = join(mkdtempSync(join(tmpdir(), 'airlock-rec-')), 'seq.jsonl');
  const f = openMappedFile(path);
  assert.ok(f !== undefined);
  const seqs = [0, 1, 9, 10, 99, 100, 123456789, 4294967295, 4294967296, 2 ** 53 - 1];
  const want: string[] = [];
  for (const seq of seqs) {
    const body = { type: 'statement', text: `n=${String(seq)}` };
    assert.equal(f.appendRecord(seq, '2026-12-01T10:00:00.000Z', JSON.stringify(body), GENESIS), seal(body, seq, GENESIS, '2026-12-01T10:00:00.000Z').hash);
    want.push(seal(body, seq, GENESIS, '2026-12-01T10:00:00.000Z').line);
  }
  f.close();
  assert.equal(readFileSync(path, 'utf8'), `${want.join('\n')}\n`);
});

test('property: any single-byte change of a recording is detected', () => {
  const { text } = recording();
  fc.assert(
    fc.property(fc.integer({ min: 0, max: text.length - 2 }), fc.integer({ min: 32, max: 126 }), (pos, code) => {
      if (text.charCodeAt(pos) === code || text[pos] === '\n') return;
      const tampered = text.slice(0, pos) + String.fromCharCode(code) + text.slice(pos + 1);
      assert.equal(verifyRecording(tampered, { endTypes: ['session_end'] }).ok, false, `byte ${pos}`);
    }),
    { numRuns: 2000 },
  );
});

test('the writer refuses to overwrite an existing recording, and fails closed after a write error', () => {
  const { path } = recording();
  assert.throws(() => new RecordingWriter(path), RecorderError);
  const w = new RecordingWriter(join(mkdtempSync(join(tmpdir(), 'airlock-rec-')), 'x.jsonl'));
  w.close();
  w.append({ type: 'statement' });
  assert.throws(() => {
    w.flush();
  }, /recording is closed/);
});
