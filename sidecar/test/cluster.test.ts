/** Cluster mode's pure parts: listener plans, compiling the operator's bundle, approval asks, the report buffer and its delivery. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseManifests, type BundleConnection, type SessionReport } from '@airlock/api';
import { compileBundle, loadSqlParser } from '@airlock/policy';
import {
  ControlRequestError,
  ReportBuffer,
  ReportSender,
  askOf,
  compileConnection,
  compileSidecarBundle,
  fixedPolicy,
  noPolicyMessage,
  parseReportBuffer,
  planListeners,
  resolveUpstream,
  sessionName,
  silentLogger,
  type ListenerSpec,
  type PolicySource,
} from '@airlock/sidecar';

const spec = (port: number, protocol: 'postgres' | 'ssh' = 'postgres', dir = '/rec/default/ns/pod'): ListenerSpec => ({ protocol, listenPort: port, recordingsDir: dir });

test('listener plan: unchanged listeners stay (policy swap only), changed ones restart, removed ones close', () => {
  const running = new Map([
    ['a', spec(15432)],
    ['b', spec(15433)],
    ['c', spec(2222, 'ssh')],
  ]);
  const wanted = new Map([
    ['a', spec(15432)],
    ['b', spec(15434)],
    ['d', spec(2223, 'ssh')],
  ]);
  const p = planListeners(running, wanted);
  assert.deepEqual(p.keep, ['a']);
  assert.deepEqual([...p.stop].sort(), ['b', 'c']);
  assert.deepEqual([...p.start].sort(), ['b', 'd']);
  assert.deepEqual(p.conflicts, []);
  // another recordings directory (a new claim) or protocol is a restart too
  assert.deepEqual(planListeners(new Map([['a', spec(1)]]), new Map([['a', spec(1, 'postgres', '/other')]])).start, ['a']);
  assert.deepEqual(planListeners(new Map([['a', spec(1)]]), new Map([['a', spec(1, 'ssh')]])).stop, ['a']);
});

test('listener plan: two connections on one port: the one listening keeps it, else the first by name', () => {
  const p = planListeners(new Map([['z', spec(15432)]]), new Map([['a', spec(15432)], ['z', spec(15432)]]));
  assert.deepEqual(p.keep, ['z']);
  assert.deepEqual(p.start, []);
  assert.deepEqual(p.conflicts, [{ name: 'a', port: 15432, with: 'z' }]);
  const q = planListeners(new Map(), new Map([['b', spec(9)], ['a', spec(9)]]));
  assert.deepEqual(q.start, ['a']);
  assert.deepEqual(q.conflicts, [{ name: 'b', port: 9, with: 'a' }]);
});

test('listener plan: every wanted connection is started, kept or in conflict; nothing running survives unplanned (property)', () => {
  const specs = fc.record({ protocol: fc.constantFrom('postgres' as const, 'ssh' as const), listenPort: fc.integer({ min: 1, max: 4 }), recordingsDir: fc.constantFrom('/a', '/b') });
  const maps = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'e'), specs).map((d) => new Map(Object.entries(d)));
  fc.assert(
    fc.property(maps, maps, (running, wanted) => {
      const p = planListeners(running, wanted);
      const served = [...p.keep, ...p.start];
      assert.equal(served.length + p.conflicts.length, wanted.size);
      assert.equal(new Set(served.map((n) => wanted.get(n)?.listenPort)).size, served.length, 'one listener per port');
      for (const n of running.keys()) assert.ok(p.keep.includes(n) || p.stop.includes(n));
      for (const n of p.start) if (running.has(n)) assert.ok(p.stop.includes(n), 'a restart stops first');
    }),
  );
});

const objects = (extra: { pattern?: string; password?: boolean; sa?: string } = {}): BundleConnection['objects'] => [
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders-credentials', namespace: 'agents' }, data: { username: Buffer.from('agent').toString('base64'), ...(extra.password === false ? {} : { password: Buffer.from('pw').toString('base64') }) } },
  {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'AgentConnection',
    metadata: { name: 'orders', namespace: 'agents', uid: 'u1', generation: 3, labels: { data: 'pii' } },
    spec: { protocol: 'postgres', target: { host: 'db', port: 5432, database: 'orders' }, credentialsSecretRef: { name: 'orders-credentials' }, agents: { podSelector: {} }, listenPort: 15999, recording: { claimName: 'recs' } },
  },
  {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'MaskingPolicy',
    metadata: { name: 'pii', namespace: 'agents' },
    spec: { connectionSelector: { matchLabels: { data: 'pii' } }, rules: [{ name: 'p', match: { pattern: extra.pattern ?? 'secret-[0-9]+' }, action: { type: 'redact' } }] },
  },
  {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRule',
    metadata: { name: 'guard', namespace: 'agents' },
    spec: { connectionSelector: {}, subjects: { serviceAccounts: ['robot'] }, rules: [{ name: 'allow-all', match: { sql: { classes: ['write'] } }, action: 'Allow' }] },
  },
];

test('compile: the operator bundle compiles as local mode compiles the same manifests (same digest, upstream, listen port, claim)', async () => {
  await loadSqlParser();
  const c = compileConnection({ name: 'orders', objects: objects(), digest: 'sha256:op' }, 'agents', 'robot');
  assert.ok(c?.enforcement?.bundle !== undefined);
  assert.equal(c.error, undefined);
  assert.equal(c.listenPort, 15999);
  assert.equal(c.claimName, 'recs');
  assert.equal(c.protocol, 'postgres');
  const local = parseManifests('x', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects() }));
  const bundle = compileBundle(local.manifests, { connection: 'orders', namespace: 'agents', serviceAccount: 'robot' });
  assert.equal(c.enforcement.bundle.digest, bundle.digest);
  assert.deepEqual(c.enforcement.upstream, resolveUpstream(local.manifests, 'orders', 'agents'));
  assert.equal(c.enforcement.bundle.masker.maskText('x secret-42 y').text.includes('secret-42'), false);
  // the pod's service account selects the rules written for it
  assert.ok(c.enforcement.bundle.rules.some((r) => r.id === 'guard/allow-all' && r.action === 'Allow'));
  const other = compileConnection({ name: 'orders', objects: objects(), digest: 'sha256:op' }, 'agents', 'someone-else');
  assert.equal(other?.enforcement?.bundle?.rules.some((r) => r.id === 'guard/allow-all'), false);
});

test('compile: a policy that does not compile keeps the connection, with no bundle and the error; a missing credential cannot be served', async () => {
  await loadSqlParser();
  const bad = compileConnection({ name: 'orders', objects: objects({ pattern: '(unclosed' }), digest: 'd' }, 'agents', undefined);
  assert.ok(bad !== undefined);
  assert.equal(bad.enforcement?.bundle, undefined);
  assert.ok(bad.enforcement?.upstream !== undefined);
  assert.match(bad.enforcement.unavailable ?? '', /does not compile/);
  assert.match(bad.error ?? '', /pattern|regular expression|unclosed|missing/i);
  const noPw = compileConnection({ name: 'orders', objects: objects({ password: false }), digest: 'd' }, 'agents', undefined);
  assert.equal(noPw?.enforcement, undefined);
  assert.match(noPw?.error ?? '', /password/);
  assert.equal(compileConnection({ name: 'nothing', objects: [], digest: 'd' }, 'agents', undefined), undefined);
  const p = fixedPolicy(undefined, bad.enforcement.upstream);
  assert.match(noPolicyMessage(p, bad.enforcement, 'every statement is refused'), /^no policy is loaded for connection orders \(its policy does not compile: .*\): every statement is refused$/);
});

test('compile: a connection the operator refuses is listened for, with no enforcement and the operator\'s reason; a served one of the same name wins', () => {
  const pod = { namespace: 'agents', name: 'agent-0', uid: 'u', serviceAccount: 'robot' };
  const refused = { name: 'ledger', protocol: 'ssh' as const, listenPort: 2299, reason: 'CredentialsNotResolved' as const, message: 'Secret "ledger" named by spec.credentialsSecretRef does not exist in namespace "agents".' };
  const { connections } = compileSidecarBundle({ apiVersion: 'airlock.dev/v1alpha1', kind: 'SidecarBundle', revision: 'r', pod, connections: [], refused: [refused] });
  const c = connections.get('ledger');
  assert.ok(c !== undefined);
  assert.equal(c.enforcement, undefined);
  assert.equal(c.protocol, 'ssh');
  assert.equal(c.listenPort, 2299);
  assert.equal(c.namespace, 'agents');
  assert.equal(c.error, 'the Airlock operator cannot serve it (CredentialsNotResolved): Secret "ledger" named by spec.credentialsSecretRef does not exist in namespace "agents"');
  const both = compileSidecarBundle({ apiVersion: 'airlock.dev/v1alpha1', kind: 'SidecarBundle', revision: 'r', pod, connections: [{ name: 'orders', objects: objects(), digest: 'd' }], refused: [{ ...refused, name: 'orders' }] });
  assert.equal(both.connections.get('orders')?.error, undefined);
});

test('approval asks: the rule id splits into ApprovalRule and rule; the session is the AgentSession name', () => {
  const ticket = {
    connection: 'orders',
    namespace: 'agents',
    session: '20261204T183500Z-1a2b3c4d',
    protocol: 'postgres' as const,
    command: 'INSERT …',
    rules: ['guard/payments-need-review', 'other/x'],
    message: 'needs review',
    approvers: { users: ['alice'], groups: ['sre'] },
    required: 2,
    timeoutSeconds: 30,
    requireReason: true,
  };
  const ask = askOf(ticket);
  assert.deepEqual(ask.rule, { approvalRule: 'guard', name: 'payments-need-review' });
  assert.equal(ask.session, '20261204t183500z-1a2b3c4d');
  assert.match(ask.session, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  assert.equal(ask.required, 2);
  assert.equal(ask.requireReason, true);
  assert.deepEqual(askOf({ ...ticket, rules: [] }).rule, { approvalRule: 'orders', name: 'defaultAction' });
  assert.equal(sessionName('ABC'), 'abc');
});

const report = (session: string, seq: number, type: SessionReport['type'] = 'progress'): SessionReport => ({
  session,
  connection: 'orders',
  protocol: 'postgres',
  seq,
  type,
  startTime: '2026-12-04T18:00:00.000Z',
  ...(type === 'end' ? { endTime: '2026-12-04T18:01:00.000Z' } : {}),
  counts: { statements: seq, rows: 0, maskedValues: 0, blocked: 0, approvals: 0 },
  recording: { path: 'agents/pod/orders/s.jsonl', chainHead: `h${String(seq)}`, records: seq },
});

test('report buffer: appended in order, survives a restart, acknowledged ones removed; a torn last line is dropped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-reports-'));
  const b = new ReportBuffer(dir);
  b.append(report('s1', 1, 'start'));
  b.append(report('s1', 2));
  b.append(report('s2', 1, 'start'));
  const again = new ReportBuffer(dir);
  assert.deepEqual(again.pending.map((r) => `${r.session}:${String(r.seq)}`), ['s1:1', 's1:2', 's2:1']);
  again.remove(again.pending[0] as SessionReport);
  assert.deepEqual(new ReportBuffer(dir).pending.map((r) => `${r.session}:${String(r.seq)}`), ['s1:2', 's2:1']);
  // a crash in the middle of an append
  appendFileSync(b.path, '{"session":"s3","se');
  const torn = new ReportBuffer(dir);
  assert.equal(torn.pending.length, 2);
  torn.append(report('s3', 1, 'start'));
  assert.deepEqual(new ReportBuffer(dir).pending.map((r) => `${r.session}:${String(r.seq)}`), ['s1:2', 's2:1', 's3:1']);
  assert.ok(readFileSync(b.path, 'utf8').endsWith('\n'));
  assert.deepEqual(parseReportBuffer('garbage\n\n{"x":1}\n'), []);
});

test('report sender: delivers in order, keeps what failed and retries it first, drops what the operator refuses as malformed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-reports-'));
  const buffer = new ReportBuffer(dir);
  const delivered: string[] = [];
  let down = true;
  const sender = new ReportSender({
    buffer,
    log: silentLogger(),
    retryMs: 10,
    maxRetryMs: 20,
    send: (r) => {
      if (r.session === 'bad') return Promise.reject(new ControlRequestError(400, 'InvalidBody', 'seq: must be an integer'));
      if (down) return Promise.reject(new ControlRequestError(undefined, 'Unreachable', 'connect ECONNREFUSED'));
      delivered.push(`${r.session}:${String(r.seq)}`);
      return Promise.resolve();
    },
  });
  sender.start();
  sender.submit(report('s1', 1, 'start'));
  sender.submit(report('bad', 1));
  sender.submit(report('s1', 2, 'end'));
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(delivered, []);
  assert.equal(new ReportBuffer(dir).pending.length, 3, 'all buffered on disk while the operator is down');
  down = false;
  for (let i = 0; i < 100 && !sender.idle; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(delivered, ['s1:1', 's1:2']);
  assert.equal(new ReportBuffer(dir).pending.length, 0);
  await sender.stop();
});

test('report sender: a restart delivers what an earlier run buffered, oldest first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-reports-'));
  writeFileSync(join(dir, 'session-reports.jsonl'), `${JSON.stringify(report('old', 1, 'start'))}\n${JSON.stringify(report('old', 2, 'end'))}\n`);
  const delivered: number[] = [];
  const sender = new ReportSender({ buffer: new ReportBuffer(dir), log: silentLogger(), send: (r) => { delivered.push(r.seq); return Promise.resolve(); } });
  sender.start();
  for (let i = 0; i < 100 && !sender.idle; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(delivered, [1, 2]);
  await sender.stop();
});

/** What a real client meets when it connects to the real proxy serving `policy`. */
async function startupRefusal(policy: PolicySource): Promise<Error & { code?: string }> {
  const { startPgProxy, LocalApprovals } = await import('@airlock/sidecar');
  const pg = (await import('pg')).default;
  const proxy = await startPgProxy({
    policy,
    listen: { host: '127.0.0.1', port: 0 },
    recordingsDir: mkdtempSync(join(tmpdir(), 'airlock-rec-')),
    approvals: new LocalApprovals({ stateDir: mkdtempSync(join(tmpdir(), 'airlock-state-')) }),
    log: silentLogger(),
  });
  try {
    const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'x', password: 'y', database: 'z' });
    return await c.connect().then(
      () => assert.fail('the connection was accepted'),
      (err: unknown) => err as Error & { code?: string },
    );
  } finally {
    await proxy.close();
  }
}

test('a connection with nothing to enforce is refused at startup with a clear message (the real proxy, a real client)', async () => {
  const bare = await startupRefusal({ connection: { name: 'orders', namespace: 'agents' }, current: () => undefined });
  assert.equal(bare.code, '42501');
  assert.match(bare.message, /no policy is loaded for connection orders: the connection is refused/);
  // the source knows why (the operator's reason): the agent is told
  const told = await startupRefusal({ connection: { name: 'orders', namespace: 'agents' }, current: () => undefined, refusal: () => 'Secret "orders" does not exist' });
  assert.equal(told.code, '42501');
  assert.equal(told.message, 'airlock: no policy is loaded for connection orders (Secret "orders" does not exist): the connection is refused');
});
