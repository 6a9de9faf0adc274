/**
 * The SSH session recorder's casts: a closed cast is complete on disk at once (the agent is not
 * held for the fsync), and the session's end waits until every cast is synced and closed.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { verifyCast } from '@airlock/api';
import { AsciicastWriter, castEventLine, castHeaderLine } from '../src/record/asciicast.ts';
import { silentLogger } from '../src/log.ts';
import { SessionRecorder } from '../src/ssh/recorder.ts';

/** The descriptors this process has open on files under `dir`. */
function openUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // the descriptor of readdirSync itself, already closed
    }
  }
  return open;
}

test('asciicast writer: close returns at once with the whole cast written; the descriptor is synced and closed after', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cast-close-'));
  const path = join(dir, 's.0.cast');
  const w = new AsciicastWriter(path, { width: 80, height: 24, timestamp: 1 }, () => 0);
  w.output('one\r\n');
  const final = w.close();
  // complete before the background sync: a reader (or a verify) right after sees everything
  const data = readFileSync(path);
  assert.equal(data.toString('utf8'), `${castHeaderLine({ width: 80, height: 24, timestamp: 1 })}\n${castEventLine(0, 'o', 'one\r\n')}\n`);
  assert.deepEqual(verifyCast(data, [final]), { ok: true });
  assert.equal(final.final, true);
  assert.throws(() => { w.output('late'); }, /closed/);
  await w.synced;
  assert.deepEqual(openUnder(dir), []);
});

test('session recorder: the session ends only once its casts are synced and closed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-rec-settle-'));
  const rec = new SessionRecorder(dir, 'box', 'Closed', silentLogger());
  const casts = [0, 1].map((ch) => rec.openCast(ch, { width: 80, height: 24, timestamp: 1 }));
  for (const c of casts) c?.output('x'.repeat(100_000));
  for (const c of casts) c?.close();
  assert.ok(openUnder(join(dir, 'box')).some((p) => p.endsWith('.cast')), 'a cast descriptor is still being synced right after close');
  await rec.settled();
  assert.deepEqual(openUnder(join(dir, 'box')).filter((p) => p.endsWith('.cast')), []);
  rec.end({ type: 'session_end', reason: 'test' });
  const path = rec.path ?? '';
  const types = readFileSync(path, 'utf8').replace(/\0+$/, '').trim().split('\n').map((l) => (JSON.parse(l) as { type: string; final?: boolean }));
  assert.deepEqual(types.map((r) => r.type), ['cast', 'cast', 'cast', 'cast', 'session_end']);
  assert.equal(types.filter((r) => r.final === true).length, 2);
});
