/**
 * The PostgreSQL message pipeline without sockets (frontend-flow.ts, backend-flow.ts and the
 * state they share), and its pure parts one by one: the reply queue, protocol names, the lexing
 * and COPY FROM STDIN trackers, notice masking, the greeting. Plain values: messages built with
 * the wire helpers, a bundle compiled from manifests, hooks that collect what they are given.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseManifests } from '@airlock/api';
import { compileBundle, compileMasker, loadSqlParser, SqlDecider, type Decision } from '@airlock/policy';
import type { ApprovalPort } from '../src/approval/port.ts';
import { resolveUpstream } from '../src/config.ts';
import { Enforcer } from '../src/enforce/enforcer.ts';
import { fixedPolicy } from '../src/proxy.ts';
import { commandComplete, dataRow, errorResponse, noticeResponse, readyForQuery } from '../src/pg/backend.ts';
import { BackendFlow, DROP } from '../src/pg/backend-flow.ts';
import { Catalog } from '../src/pg/catalog.ts';
import { CopyInTracker } from '../src/pg/copy-in.ts';
import { ProtocolError } from '../src/pg/errors.ts';
import { ReplyQueue, type Expect } from '../src/pg/expects.ts';
import { FlowState } from '../src/pg/flow-state.ts';
import { FrontendFlow, REFUSED_SQL } from '../src/pg/frontend-flow.ts';
import { FrontendParser, type Framed, type FrontendMessage } from '../src/pg/frontend.ts';
import { checkProtocol, greeting, type StartupMessage } from '../src/pg/greeting.ts';
import { LexingState } from '../src/pg/lexing.ts';
import { maskNotice, maskNotification } from '../src/pg/notices.ts';
import { ProtocolNames, type Prepared } from '../src/pg/prepared.ts';
import { frontendMessage, parseMessage, queryMessage, readNoticeFields, startupMessage } from '../src/pg/wire.ts';
import { silentLogger } from '../src/log.ts';

before(async () => {
  await loadSqlParser();
});

const ALLOW: Decision = { decision: 'Allow', classes: ['read'], rules: [], message: '' };

// ---------------------------------------------------------------- pure parts

test('reply queue: answers come off in order, an answer to a Sync can be put back, compaction keeps the order', () => {
  const q = new ReplyQueue();
  for (let i = 0; i < 3000; i++) q.push({ k: i % 2 === 0 ? 'close' : 'sync' });
  for (let i = 0; i < 3000; i++) {
    assert.equal(q.current()?.k, i % 2 === 0 ? 'close' : 'sync');
    const e = q.pop();
    assert.equal(e?.k, i % 2 === 0 ? 'close' : 'sync', `entry ${String(i)}`);
    if (i === 2001) {
      q.unpop();
      assert.equal(q.pop(), e);
    }
  }
  assert.equal(q.pop(), undefined);
});

test('lexing: a text that does not read alike waits for the ReadyForQuery in flight, or is refused after a Bind or Execute', () => {
  const lex = new LexingState();
  const query = (sql: string): FrontendMessage => ({ type: 'Query', sql });
  assert.equal(lex.mustWait(query("SELECT 'é'")), false, 'nothing in flight');
  lex.forwardedReady();
  assert.equal(lex.mustWait(query('SELECT 1')), false, 'ASCII reads alike');
  assert.equal(lex.mustWait(query("SELECT 'é'")), true);
  assert.equal(lex.refusal("SELECT 'é'"), undefined);
  lex.batchRan = true;
  assert.equal(lex.mustWait(query("SELECT 'é'")), false, 'no ReadyForQuery can come first');
  assert.equal(lex.refusal("SELECT 'é'")?.decision, 'Block');
  assert.equal(lex.refusal('SELECT 1'), undefined);
  lex.waiting = true;
  assert.equal(lex.answered(), true, 'the last ReadyForQuery lets what waited go on');
  assert.equal(lex.waiting, false);
  assert.equal(lex.answered(), false);
  assert.equal(lex.awaitingReady, 0);
});

test('COPY FROM STDIN: unknown start waits; during the COPY Sync and Flush are dropped and anything else fails it', () => {
  const t = new CopyInTracker();
  const sync: FrontendMessage = { type: 'Sync' };
  const query: FrontendMessage = { type: 'Query', sql: 'SELECT 1' };
  assert.equal(t.gate(0), undefined);
  assert.equal(t.during(sync), undefined, 'no COPY can be running');
  const owner: { gate?: ReturnType<CopyInTracker['gate']> } = {};
  const g = t.gate(1);
  assert.ok(g !== undefined);
  owner.gate = g;
  assert.equal(t.during(sync), 'wait');
  assert.equal(t.during({ type: 'CopyData', data: Buffer.alloc(0) }), undefined, 'copy data always goes');
  t.waiting = true;
  t.started(owner);
  assert.equal(t.changed(), true, 'the CopyInResponse answers what waited');
  assert.equal(t.during(sync), DROP);
  const fail = t.during(query);
  assert.ok(Buffer.isBuffer(fail));
  assert.equal(fail[0], 0x66, 'a CopyFail');
  assert.equal(t.during(query), undefined, 'the COPY is over');
  assert.equal(CopyInTracker.finish(g), true);
  assert.equal(CopyInTracker.finish(g), false);
});

test('protocol names: SQL forgets what it may change; a failed Parse gives the name back', () => {
  const names = new ProtocolNames();
  const st = (sql: string): Prepared => ({ sql, decision: ALLOW, approved: false });
  const a = st('SELECT 1');
  const b = st('SELECT 2');
  names.statements.set('s1', a);
  names.statements.set('', b);
  names.changedBy('DEALLOCATE s1', ALLOW);
  assert.equal(names.statements.has('s1'), false);
  names.statements.set('s1', a);
  names.changedBy('SELECT f()', { ...ALLOW, classes: ['opaque'] });
  assert.deepEqual([...names.statements.keys()], [''], 'opaque code may drop every named statement; the unnamed one stays');
  const c = st('SELECT 3');
  names.statements.set('s2', c);
  const later = st('SELECT 4');
  names.statements.set('s2', later);
  names.undoParse({ name: 's2', previous: c, set: later }, false);
  assert.equal(names.statements.get('s2'), c, 'a failed Parse of a named statement leaves the old one');
  names.statements.set('', later);
  names.undoParse({ name: '', previous: b, set: later }, false);
  assert.equal(names.statements.has(''), false, 'a failed Parse of the unnamed statement dropped the old one');
});

test('notices: every text field is masked, the severity and SQLSTATE never; a malformed notification is refused even unmasked', () => {
  const masker = compileMasker([{ name: 'p', match: { pattern: 'secret-[0-9]+' }, action: { type: 'redact' } }], Buffer.from('k'));
  const msg = errorResponse({ severity: 'ERROR', code: '23505', message: 'duplicate key secret-42', detail: 'Key (k)=(secret-7) exists.' });
  const r = maskNotice(masker, 'E', msg, 0, msg.length, false);
  assert.ok(r !== undefined);
  assert.equal(r.masked, 2);
  const fields = new Map(readNoticeFields(r.message).fields);
  assert.equal(fields.get(0x43), '23505');
  assert.doesNotMatch(`${fields.get(0x4d) ?? ''} ${fields.get(0x44) ?? ''}`, /secret-/);
  const plain = noticeResponse({ severity: 'NOTICE', code: '00000', message: 'nothing here' });
  assert.equal(maskNotice(masker, 'N', plain, 0, plain.length, false), undefined);
  const bad = Buffer.from([0x41, 0, 0, 0, 9, 0, 0, 0, 1, 0x61]);
  assert.throws(() => maskNotification(undefined, bad, 0, bad.length), ProtocolError);
});

test('greeting: 3.0 gets AuthenticationOk; a newer minor version or _pq_ options are negotiated down first; 2.0 is refused', () => {
  const startup = (version: number, parameters: Record<string, string>): StartupMessage => ({ type: 'StartupMessage', protocolVersion: version, parameters });
  assert.deepEqual([...greeting(startup(0x30000, { user: 'a' }))], [0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
  const g = greeting(startup(0x30002, { user: 'a', _pq_x: '1', '_pq_.y': '1' }));
  assert.equal(g[0], 0x76, 'NegotiateProtocolVersion first');
  assert.equal(g.readInt32BE(5), 0x30000);
  assert.equal(g.readInt32BE(9), 1, 'one unknown option');
  assert.throws(() => {
    checkProtocol(startup(0x20000, {}));
  }, ProtocolError);
  checkProtocol(startup(0x30002, {}));
});

// ---------------------------------------------------------------- the pipeline

function setup(): { front: FrontendFlow; back: BackendFlow; state: FlowState; records: Record<string, unknown>[]; resumed: number[]; upstream: Buffer[] } {
  const items = [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'agents' }, data: { username: Buffer.from('agent').toString('base64'), password: Buffer.from('pw').toString('base64') } },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'orders', namespace: 'agents', labels: { data: 'pii' } },
      spec: { protocol: 'postgres', target: { host: 'db', port: 5432, database: 'orders' }, credentialsSecretRef: { name: 'creds' }, agents: { podSelector: {} }, listenPort: 15999, defaultAction: 'Allow' },
    },
    { apiVersion: 'airlock.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name: 'pii', namespace: 'agents' }, spec: { connectionSelector: { matchLabels: { data: 'pii' } }, rules: [{ name: 'p', match: { pattern: 'secret-[0-9]+' }, action: { type: 'redact' } }] } },
    { apiVersion: 'airlock.dev/v1alpha1', kind: 'ApprovalRule', metadata: { name: 'guard', namespace: 'agents' }, spec: { connectionSelector: {}, rules: [{ name: 'no-drop', match: { sql: { classes: ['destructive'] } }, action: 'Block', message: 'no dropping' }] } },
  ];
  const m = parseManifests('t.yaml', JSON.stringify({ apiVersion: 'v1', kind: 'List', items })).manifests;
  const upstream = resolveUpstream(m, 'orders', 'agents');
  const policy = fixedPolicy(compileBundle(m, { connection: 'orders', namespace: 'agents' }), upstream);
  const records: Record<string, unknown>[] = [];
  const resumed: number[] = [];
  const sent: Buffer[] = [];
  const approvals: ApprovalPort = { request: () => Promise.reject(new Error('no approvals in this test')) };
  const log = silentLogger();
  const enforcer = new Enforcer({ protocol: 'postgres', policy, approvals, recorder: { id: 's', record: () => undefined, note: () => undefined }, connection: policy.connection });
  enforcer.refresh();
  const state = new FlowState(enforcer, {
    recordJson: (json) => records.push(JSON.parse(json) as Record<string, unknown>),
    resume: () => resumed.push(1),
  });
  state.plans.catalog = new Catalog(upstream);
  const front = new FrontendFlow(state, {
    deciderFor: (bundle) => new SqlDecider(bundle),
    log,
    session: () => 's',
    flushRecord: () => undefined,
    toAgent: () => undefined,
    toServer: (b) => sent.push(...b),
    signal: new AbortController().signal,
  });
  return { front, back: new BackendFlow(state), state, records, resumed, upstream: sent };
}

/** Frontend messages as the parser frames them (after a startup packet). */
function framed(...raw: Buffer[]): Framed[] {
  const p = new FrontendParser();
  const msgs = p.push(Buffer.concat([startupMessage(0x30000, { user: 'a' }), ...raw]));
  return msgs.slice(1);
}

/** A RowDescription of computed text columns (no table). */
function rowDescription(names: readonly string[]): Buffer {
  const parts = names.map((n) => {
    const tail = Buffer.alloc(18);
    tail.writeUInt32BE(0, 0);
    tail.writeInt16BE(0, 4);
    tail.writeUInt32BE(25, 6);
    tail.writeInt16BE(-1, 10);
    tail.writeInt32BE(-1, 12);
    tail.writeInt16BE(0, 16);
    return Buffer.concat([Buffer.from(`${n}\0`, 'utf8'), tail]);
  });
  const count = Buffer.alloc(2);
  count.writeInt16BE(names.length, 0);
  return frontendMessage('T', Buffer.concat([count, ...parts]));
}

/** What the pipeline makes of a backend message: the bytes the agent gets (null: swallowed). */
function answer(back: BackendFlow, msg: Buffer): Buffer | null {
  const r = back.onBackend(msg[0] ?? 0, msg, 0, msg.length);
  assert.ok(!(r instanceof Promise), 'no catalogue lookup for computed columns');
  if (r === DROP) return null;
  return r ?? msg;
}

test('a simple query: forwarded as sent, its rows masked, its statement and result recorded', () => {
  const { front, back, records, state } = setup();
  const out: Buffer[] = [];
  const [q] = framed(queryMessage("SELECT 'secret-42' AS s"));
  assert.ok(q !== undefined);
  assert.equal(front.handle(q, out), undefined);
  assert.deepEqual(out, [q.raw]);
  assert.deepEqual(answer(back, rowDescription(['s'])), rowDescription(['s']), 'passed through');
  const row = answer(back, dataRow([Buffer.from('secret-42')]));
  assert.ok(row !== null);
  assert.doesNotMatch(row.toString('utf8'), /secret-42/);
  answer(back, commandComplete('SELECT 1'));
  answer(back, readyForQuery('I'));
  assert.deepEqual(records.map((r) => [r['type'], r['decision'] ?? r['rows']]), [
    ['statement', 'Allow'],
    ['result', 1],
  ]);
  assert.equal(records[1]?.['masked'], 1);
  assert.deepEqual(state.counts, { statements: 1, blocked: 0, approvals: 0, rows: 1, masked: 1 });
  assert.equal(state.queue.current(), undefined, 'every answer matched');
});

test('a blocked query: the server gets text that fails to parse; its error is swapped for the refusal (42501) and the session goes on', () => {
  const { front, back, records, state } = setup();
  const out: Buffer[] = [];
  const [q] = framed(queryMessage('DROP TABLE orders'));
  assert.ok(q !== undefined);
  assert.equal(front.handle(q, out), undefined);
  assert.deepEqual(out, [queryMessage(REFUSED_SQL)]);
  const err = answer(back, errorResponse({ severity: 'ERROR', code: '42601', message: 'syntax error at or near "AIRLOCK"' }));
  assert.ok(err !== null);
  const fields = new Map(readNoticeFields(err).fields);
  assert.equal(fields.get(0x43), '42501');
  assert.match(fields.get(0x4d) ?? '', /no dropping/);
  answer(back, readyForQuery('I'));
  assert.equal(records[1]?.['error'], 'refused');
  assert.equal(state.counts.blocked, 1);
});

test('an extended batch whose Parse is refused: what follows up to Sync is skipped, recorded as not run, and names are given back', () => {
  const { front, back, records, state } = setup();
  const out: Buffer[] = [];
  const bind = frontendMessage('B', Buffer.from([0, 0x73, 0x31, 0, 0, 0, 0, 0, 0, 0]));
  const execute = frontendMessage('E', Buffer.from([0, 0, 0, 0, 0]));
  const sync = frontendMessage('S', Buffer.alloc(0));
  const msgs = framed(parseMessage('s1', 'DROP TABLE orders'), bind, execute, sync);
  for (const f of msgs) assert.equal(front.handle(f, out), undefined);
  assert.equal(state.names.statements.has('s1'), false, 'a refused statement is not prepared');
  const err = answer(back, errorResponse({ severity: 'ERROR', code: '42601', message: 'syntax error' }));
  assert.ok(err !== null);
  assert.equal(new Map(readNoticeFields(err).fields).get(0x43), '42501');
  assert.equal(state.queue.current()?.k, 'sync', 'the rest of the batch was skipped');
  answer(back, readyForQuery('I'));
  assert.equal(state.queue.current(), undefined);
  assert.deepEqual(records.map((r) => r['type']), ['statement', 'statement', 'result']);
  assert.match(String(records[2]?.['error']), /not run/);
});

test('property: any mix of allowed and blocked simple queries leaves every answer matched and one result per statement', () => {
  fc.assert(
    fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }), (blocked) => {
      const { front, back, records, state } = setup();
      const out: Buffer[] = [];
      const msgs = framed(...blocked.map((b) => queryMessage(b ? 'DROP TABLE t' : 'SELECT 1')));
      for (const f of msgs) assert.equal(front.handle(f, out), undefined);
      for (const b of blocked) {
        if (b) answer(back, errorResponse({ severity: 'ERROR', code: '42601', message: 'syntax error' }));
        else {
          answer(back, rowDescription(['x']));
          answer(back, dataRow([Buffer.from('1')]));
          answer(back, commandComplete('SELECT 1'));
        }
        answer(back, readyForQuery('I'));
      }
      const expects: Expect | undefined = state.queue.current();
      assert.equal(expects, undefined);
      assert.equal(records.filter((r) => r['type'] === 'result').length, blocked.length);
      assert.equal(state.counts.blocked, blocked.filter(Boolean).length);
      assert.equal(state.lex.awaitingReady, 0);
    }),
    { numRuns: 30 },
  );
});
