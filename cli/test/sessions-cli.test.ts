import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { RecordingWriter } from '@airlock/sidecar';

const bin = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'airlock');

function airlock(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function makeRecording(): { path: string; head: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'airlock-cli-rec-')), 'session.jsonl');
  const w = new RecordingWriter(path);
  w.append({ type: 'session_start', connection: 'orders-db', protocol: 'postgres', client: '127.0.0.1:5555', pod: 'planner-0' });
  w.append({ type: 'statement', text: 'DROP TABLE orders', decision: 'Block', rules: ['prod-guardrails/never-destroy'] });
  w.append({ type: 'result', error: '42501 destructive statements are not allowed on production' });
  w.append({ type: 'session_end', reason: 'client closed', statements: 1, blocked: 1 });
  w.close();
  return { path, head: w.head };
}

test('sessions verify: 0 when intact (with the anchored head), 1 naming the first bad record', () => {
  const { path, head } = makeRecording();
  const ok = airlock('sessions', 'verify', path, '--head', head);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out, `${path}: intact, 4 records, chain head ${head}\n`);
  writeFileSync(path, readFileSync(path, 'utf8').replace('"decision":"Block"', '"decision":"Allow"'));
  const bad = airlock('sessions', 'verify', path);
  assert.equal(bad.code, 1);
  assert.equal(bad.err, `${path}: record 2: hash does not match its content (the record was edited)\n`);
});

test('sessions verify: a truncated recording fails; --allow-open accepts a live one', () => {
  const { path } = makeRecording();
  const text = readFileSync(path, 'utf8').trimEnd().split('\n');
  writeFileSync(path, `${text.slice(0, 2).join('\n')}\n`);
  const cut = airlock('sessions', 'verify', path);
  assert.equal(cut.code, 1);
  assert.match(cut.err, /record 2: the last record is "statement", not session_end/);
  assert.equal(airlock('sessions', 'verify', path, '--allow-open').code, 0);
});

test('sessions show prints a timeline', () => {
  const { path } = makeRecording();
  const r = airlock('sessions', 'show', path);
  assert.equal(r.code, 0, r.err);
  const rows = r.out.trimEnd().split('\n');
  assert.equal(rows.length, 4);
  assert.match(rows[0] ?? '', /^ {4}1 {2}\d\d:\d\d:\d\d\.\d{3} {2}session_start +connection orders-db \(postgres\) from 127\.0\.0\.1:5555 pod planner-0$/);
  assert.match(rows[1] ?? '', /statement +Block +DROP TABLE orders {2}\[prod-guardrails\/never-destroy\]$/);
  assert.match(rows[2] ?? '', /result +error 42501 destructive/);
  assert.match(rows[3] ?? '', /session_end +client closed statements=1 blocked=1$/);
});

test('sessions: usage errors exit 2', () => {
  assert.equal(airlock('sessions').code, 2);
  const missing = airlock('sessions', 'verify', '/nonexistent.jsonl');
  assert.equal(missing.code, 2);
  assert.equal(missing.err, 'airlock sessions: /nonexistent.jsonl: no such file\n');
  assert.match(airlock('sessions', 'replay', '/etc/hostname').err, /unknown sessions command "replay"/);
});
