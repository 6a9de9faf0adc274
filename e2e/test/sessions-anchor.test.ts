/**
 * `airlock sessions verify --session`: a recording checked against the chain head anchored in its
 * AgentSession on a real API server, so truncation at the end, a replaced recording and records
 * appended after the session ended are all caught.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seal } from '@airlock/api';
import { RecordingWriter } from '@airlock/sidecar';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { AIRLOCK_BIN } from '../src/sidecar.ts';

let cp: ControlPlane;
let dir: string;

before(async () => {
  cp = startControlPlane();
  dir = mkdtempSync(join(tmpdir(), 'airlock-anchor-'));
  for (const args of [['apply', '-f', join(ROOT, 'crds')], ['wait', '--for=condition=Established', 'crd/agentsessions.airlock.dev', '--timeout=60s'], ['create', 'namespace', 'agents']]) {
    const r = await cp.kubectl(args);
    assert.equal(r.code, 0, r.stderr);
  }
});

after(() => {
  cp.stop();
  rmSync(dir, { recursive: true, force: true });
});

function record(name: string, ended: boolean): { path: string; head: string; records: number } {
  const path = join(dir, `${name}.jsonl`);
  const w = new RecordingWriter(path);
  w.append({ type: 'session_start', connection: 'orders', protocol: 'postgres', client: '127.0.0.1:5000' });
  w.append({ type: 'statement', text: 'SELECT 1', decision: 'Allow', rules: [] });
  w.append({ type: 'result', tag: 'SELECT 1', rows: 1, masked: 0 });
  if (ended) w.append({ type: 'session_end', reason: 'client closed', statements: 1, blocked: 0 });
  w.close();
  return { path, head: w.head, records: ended ? 4 : 3 };
}

async function anchor(name: string, status: Record<string, unknown>): Promise<void> {
  const create = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'airlock.dev/v1alpha1', kind: 'AgentSession', metadata: { name, namespace: 'agents' } }) });
  assert.equal(create.code, 0, create.stderr);
  const patch = await cp.kubectl(['patch', 'agentsession', name, '-n', 'agents', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
  assert.equal(patch.code, 0, patch.stderr);
}

function verify(path: string, session: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(AIRLOCK_BIN, ['sessions', 'verify', path, '--session', session, '-n', 'agents', '--kubeconfig', cp.kubeconfig], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('an ended session: intact verifies; cut short, replaced or appended to fails', async () => {
  const rec = record('s-ended', true);
  await anchor('s-ended', { connection: 'orders', protocol: 'postgres', startTime: '2026-12-04T10:00:00Z', endTime: '2026-12-04T10:01:00Z', recording: { path: 's-ended.jsonl', chainHead: rec.head, records: rec.records } });
  const ok = verify(rec.path, 's-ended');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /intact, 4 records.*matches the anchor of AgentSession s-ended \(record 4, the end of the session\)/);

  const text = readFileSync(rec.path, 'utf8');
  const lines = text.trimEnd().split('\n');
  // the last record removed: a valid chain, one record short of the anchor
  writeFileSync(rec.path, `${lines.slice(0, 3).join('\n')}\n`);
  const cut = verify(rec.path, 's-ended');
  assert.equal(cut.code, 1);
  assert.match(cut.stderr, /has 3 records but its anchor is record 4 \(the recording was truncated\)/);

  // another, valid recording of the same length in its place
  const other = record('other', true);
  const replaced = verify(other.path, 's-ended');
  assert.equal(replaced.code, 1);
  assert.match(replaced.stderr, /record 4 is not the anchored head/);

  // the original with a validly chained record appended after the end
  const extra = seal({ type: 'statement', text: 'DROP TABLE orders', decision: 'Allow', rules: [] }, rec.records + 1, rec.head, new Date().toISOString());
  writeFileSync(rec.path, `${text}${extra.line}\n`);
  const appended = verify(rec.path, 's-ended');
  assert.equal(appended.code, 1);
  assert.match(appended.stderr, /1 records follow the anchored end of the session \(record 4\)/);
});

test('a live session: its anchor lags behind the recording, which may go on', async () => {
  const rec = record('s-live', false);
  const lines = readFileSync(rec.path, 'utf8').trimEnd().split('\n');
  const second = (JSON.parse(lines[1] ?? '{}') as { hash: string }).hash;
  await anchor('s-live', { connection: 'orders', protocol: 'postgres', startTime: '2026-12-04T10:00:00Z', recording: { path: 's-live.jsonl', chainHead: second, records: 2 } });
  const ok = verify(rec.path, 's-live');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /intact, 3 records.*\(record 2, session still open\)/);
  writeFileSync(rec.path, `${lines[0] ?? ''}\n`);
  const cut = verify(rec.path, 's-live');
  assert.equal(cut.code, 1);
  assert.match(cut.stderr, /truncated/);
});

test('clear errors: no such session, no anchor yet, --head with --session', async () => {
  const rec = record('lonely', true);
  const missing = verify(rec.path, 'nope');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /AgentSession "nope" not found in namespace "agents"/);
  await anchor('no-head', { connection: 'orders', protocol: 'postgres' });
  const none = verify(rec.path, 'no-head');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /has no anchored chain head yet/);
  const both = spawnSync(AIRLOCK_BIN, ['sessions', 'verify', rec.path, '--session', 'x', '--head', 'sha256:00'], { encoding: 'utf8' });
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--session and --head are alternatives/);
});
