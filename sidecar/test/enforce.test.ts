/**
 * The enforce step PostgreSQL and SSH share (enforce/): the policy by reference, fail closed,
 * the approval wait with its records and refusals, the ticket's defaults. Plain values: a
 * policy source, an approval port and a recorder written for the test (no module mocks).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '@airlock/api';
import { compileBundle, loadSqlParser, SqlDecider, type Decision, type PolicyBundle } from '@airlock/policy';
import type { ApprovalOutcome, ApprovalPort, ApprovalTicket, PendingApproval } from '../src/approval/port.ts';
import { UNSPECIFIED_APPROVAL, outcomeRecord, outcomeRefusal, ticketFor } from '../src/enforce/approval.ts';
import { Enforcer, type EnforceRecorder } from '../src/enforce/enforcer.ts';
import { resolveUpstream } from '../src/config.ts';
import { SidecarError } from '../src/errors.ts';
import type { Enforcement, PolicySource } from '../src/proxy.ts';
import type { RecordBody } from '@airlock/api';
import { RecorderError } from '../src/record/writer.ts';

before(async () => {
  await loadSqlParser();
});

function manifests(approval: Record<string, unknown> = { approvers: { users: ['alice'] } }): ReturnType<typeof parseManifests>['manifests'] {
  const items = [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'agents' }, data: { username: Buffer.from('agent').toString('base64'), password: Buffer.from('pw').toString('base64') } },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'orders', namespace: 'agents' },
      spec: { protocol: 'postgres', target: { host: 'db', port: 5432, database: 'orders' }, credentialsSecretRef: { name: 'creds' }, agents: { podSelector: {} }, listenPort: 15999, defaultAction: 'RequireApproval' },
    },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'ApprovalRule',
      metadata: { name: 'guard', namespace: 'agents' },
      spec: {
        connectionSelector: {},
        rules: [
          { name: 'reads', match: { sql: { classes: ['read'] } }, action: 'Allow' },
          { name: 'no-drop', match: { sql: { classes: ['destructive'] } }, action: 'Block', message: 'no dropping' },
          { name: 'writes', match: { sql: { classes: ['write'] } }, action: 'RequireApproval', approval },
        ],
      },
    },
  ];
  const parsed = parseManifests('test.yaml', JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  assert.deepEqual(parsed.errors, []);
  return parsed.manifests;
}

function enforcement(approval?: Record<string, unknown>): Enforcement {
  const m = manifests(approval);
  return { bundle: compileBundle(m, { connection: 'orders', namespace: 'agents' }), upstream: resolveUpstream(m, 'orders', 'agents') };
}

function decide(bundle: PolicyBundle | undefined, sql: string): Decision {
  assert.ok(bundle !== undefined);
  return new SqlDecider(bundle).decide(sql);
}

/** A source whose policy the test swaps. */
function source(start: Enforcement | undefined): PolicySource & { set(e: Enforcement | undefined): void } {
  let now = start;
  return {
    connection: { name: 'orders', namespace: 'agents' },
    current: () => now,
    set(e) {
      now = e;
    },
  };
}

/** A recorder that keeps what it is given; `failing`: every record throws (failurePolicy Closed). */
function recorder(failing = false): EnforceRecorder & { records: RecordBody[]; flushed: boolean[] } {
  const records: RecordBody[] = [];
  const flushed: boolean[] = [];
  const record = (body: RecordBody, flush = false): void => {
    if (failing) throw new RecorderError('disk full');
    records.push(body);
    flushed.push(flush);
  };
  return {
    id: 'sess-1',
    records,
    flushed,
    record,
    note: (body, flush) => {
      try {
        record(body, flush);
      } catch {
        // best effort
      }
    },
  };
}

/** An approval port that answers with `outcome` (or fails to take the request). */
function port(outcome: ApprovalOutcome | Error): ApprovalPort & { tickets: ApprovalTicket[]; signals: (AbortSignal | undefined)[] } {
  const tickets: ApprovalTicket[] = [];
  const signals: (AbortSignal | undefined)[] = [];
  return {
    tickets,
    signals,
    request: (ticket) => {
      tickets.push(ticket);
      if (outcome instanceof Error) return Promise.reject(outcome);
      const pending: PendingApproval = {
        name: 'areq-1',
        where: 'kubectl annotate approvalrequest areq-1 airlock.dev/decision=approve',
        expiresAt: new Date('2026-12-05T01:00:00Z'),
        outcome: (signal) => {
          signals.push(signal);
          return Promise.resolve(outcome);
        },
      };
      return Promise.resolve(pending);
    },
  };
}

const approved: ApprovalOutcome = { phase: 'Approved', decisions: [{ user: 'alice', decision: 'approve', time: 't1' }] };
const denied: ApprovalOutcome = { phase: 'Denied', decisions: [{ user: 'bob', decision: 'approve', time: 't1' }, { user: 'alice', decision: 'deny', reason: 'not today', time: 't2' }] };

function enforcer(pol: Enforcement | undefined, approvals: ApprovalPort, rec: EnforceRecorder): { e: Enforcer; src: ReturnType<typeof source> } {
  const src = source(pol);
  return { e: new Enforcer({ protocol: 'postgres', policy: src, approvals, recorder: rec, connection: src.connection, pod: 'agent-0', serviceAccount: 'robot' }), src };
}

test('the schema requires an approval block on a RequireApproval rule and defaults it once (ajv useDefaults): the bundle carries what UNSPECIFIED_APPROVAL says for what is left out', () => {
  const pol = enforcement({ approvers: { users: ['alice'] } });
  const d = decide(pol.bundle, 'INSERT INTO t VALUES (1)');
  assert.equal(d.decision, 'RequireApproval');
  assert.deepEqual(d.approval, { ...UNSPECIFIED_APPROVAL, approvers: { users: ['alice'], groups: [] } });
});

test('a ticket: the decision approval settings, or UNSPECIFIED_APPROVAL when it names none (defaultAction)', () => {
  const pol = enforcement({ approvers: { groups: ['dba'] }, required: 2, timeout: '30s', requireReason: true });
  const who = { protocol: 'postgres' as const, connection: { name: 'orders', namespace: 'agents' }, pod: 'agent-0' };
  const held = ticketFor(who, { session: 's', command: 'INSERT …', decision: decide(pol.bundle, 'INSERT INTO t VALUES (1)') });
  assert.deepEqual({ approvers: held.approvers, required: held.required, timeoutSeconds: held.timeoutSeconds, requireReason: held.requireReason }, { approvers: { users: [], groups: ['dba'] }, required: 2, timeoutSeconds: 30, requireReason: true });
  assert.equal(held.pod, 'agent-0');
  assert.equal('serviceAccount' in held, false);
  const byDefault = decide(pol.bundle, 'CALL p()');
  assert.equal(byDefault.decision, 'RequireApproval');
  assert.equal(byDefault.approval, undefined);
  const t = ticketFor(who, { session: 's', command: 'CALL p()', decision: byDefault });
  assert.deepEqual({ approvers: t.approvers, required: t.required, timeoutSeconds: t.timeoutSeconds, requireReason: t.requireReason }, UNSPECIFIED_APPROVAL);
});

test('outcomes: Approved runs; Denied, Expired and Withdrawn are refusals naming the request; the record lists every reviewer', () => {
  assert.equal(outcomeRefusal('areq-1', approved, ['r']), undefined);
  const d = outcomeRefusal('areq-1', denied, ['guard/writes']);
  assert.ok(d instanceof SidecarError);
  assert.equal(d.code, 'ApprovalDenied');
  assert.match(d.message, /denied by alice: not today \(approval request areq-1\)/);
  assert.deepEqual(d.rules, ['guard/writes']);
  assert.equal(outcomeRefusal('areq-1', { phase: 'Expired', decisions: [] }, [])?.code, 'ApprovalExpired');
  assert.match(outcomeRefusal('areq-1', { phase: 'Withdrawn', decisions: [] }, [])?.message ?? '', /withdrawn/);
  const rec = outcomeRecord({ statement: 3 }, 'areq-1', denied);
  assert.deepEqual(rec, { type: 'approval', statement: 3, request: 'areq-1', phase: 'Denied', reviewers: ['bob', 'alice'], reviewer: 'alice', reason: 'not today', decisions: denied.decisions });
});

test('approve: the request, Pending (flushed) and the outcome are recorded in order; the agent is told it waits; approved resolves', async () => {
  const pol = enforcement({ approvers: { users: ['alice'] } });
  const rec = recorder();
  const approvals = port(approved);
  const { e } = enforcer(pol, approvals, rec);
  const counters = { blocked: 0, approvals: 0 };
  const told: string[] = [];
  const abort = new AbortController();
  await e.approve(
    {
      subject: { statement: 7 },
      command: 'INSERT INTO t VALUES (1)',
      decision: decide(pol.bundle, 'INSERT INTO t VALUES (1)'),
      signal: abort.signal,
      waiting: (p, d) => told.push(`${d.message} ${p.name}`),
      approved: (o) => told.push(`approved ${o.phase}`),
    },
    counters,
  );
  assert.deepEqual(counters, { blocked: 0, approvals: 1 });
  assert.deepEqual(told, ['statement requires approval by rule guard/writes areq-1', 'approved Approved']);
  assert.deepEqual(rec.records.map((r) => [r['statement'], r['phase']]), [
    [7, 'Pending'],
    [7, 'Approved'],
  ]);
  assert.deepEqual(rec.flushed, [true, true], 'write-ahead: each approval record is flushed before the session goes on');
  const ticket = approvals.tickets[0];
  assert.ok(ticket !== undefined);
  assert.equal(ticket.session, 'sess-1');
  assert.equal(ticket.serviceAccount, 'robot');
  assert.equal(approvals.signals[0], abort.signal, 'the session signal withdraws the request');
});

test('approve: denied, or a backend that cannot take the request, refuses and counts as blocked (fail closed)', async () => {
  const pol = enforcement({ approvers: { users: ['alice'] } });
  const held = { subject: { channel: 1 }, command: 'x', decision: decide(pol.bundle, 'INSERT INTO t VALUES (1)'), signal: new AbortController().signal, waiting: () => undefined };
  const counters = { blocked: 0, approvals: 0 };
  await assert.rejects(enforcer(pol, port(denied), recorder()).e.approve(held, counters), (err: unknown) => err instanceof SidecarError && err.code === 'ApprovalDenied');
  const rec = recorder();
  await assert.rejects(enforcer(pol, port(new Error('operator unreachable')), rec).e.approve(held, counters), (err: unknown) => err instanceof SidecarError && err.code === 'ApprovalUnavailable' && err.message.includes('operator unreachable'));
  assert.deepEqual(rec.records, [{ type: 'approval', channel: 1, phase: 'Unavailable', error: 'operator unreachable' }]);
  assert.deepEqual(counters, { blocked: 2, approvals: 2 });
  // a recorder that cannot write (failurePolicy Closed): not run, even if it would be approved
  await assert.rejects(enforcer(pol, port(approved), recorder(true)).e.approve(held, counters), RecorderError);
  assert.equal(counters.blocked, 3);
});

test('refusal: Block is Blocked, no policy is PolicyUnavailable; both counted', () => {
  const pol = enforcement();
  const { e } = enforcer(pol, port(approved), recorder());
  const counters = { blocked: 0, approvals: 0 };
  assert.equal(e.refusal(decide(pol.bundle, 'SELECT 1'), counters), undefined);
  assert.equal(e.refusal(decide(pol.bundle, 'INSERT INTO t VALUES (1)'), counters), undefined, 'held, not refused');
  const blocked = e.refusal(decide(pol.bundle, 'DROP TABLE t'), counters);
  assert.equal(blocked?.code, 'Blocked');
  assert.equal(blocked.message, 'no dropping');
  const none = e.refusal(e.unavailableDecision('every statement is refused'), counters);
  assert.equal(none?.code, 'PolicyUnavailable');
  assert.match(none.message, /no policy is loaded for connection orders/);
  assert.equal(counters.blocked, 2);
});

test('the policy by reference: a swap applies from the next refresh; a source that stops serving leaves no bundle', () => {
  const first = enforcement();
  const second = enforcement({ approvers: { users: ['carol'] } });
  const { e, src } = enforcer(undefined, port(approved), recorder());
  assert.equal(e.refresh(), undefined);
  src.set(first);
  assert.equal(e.refresh(), first);
  src.set(second);
  assert.equal(e.current, first, 'what a statement in flight was decided with stays until the next refresh');
  assert.equal(e.refresh(), second);
  src.set(undefined);
  const gone = e.refresh();
  assert.equal(gone?.bundle, undefined);
  assert.equal(gone?.upstream, second.upstream);
  assert.match(e.noPolicy('every statement is refused'), /the connection is no longer served/);
});

test('authorize (the whole step): no bundle refuses with PolicyUnavailable and records it; Block records then refuses; RequireApproval waits', async () => {
  const pol = enforcement({ approvers: { users: ['alice'] } });
  const rec = recorder();
  const { e, src } = enforcer(undefined, port(approved), rec);
  const counters = { blocked: 0, approvals: 0 };
  const log: string[] = [];
  const step = (sql: string): Parameters<Enforcer['authorize']>[0] => ({
    decide: (bundle) => decide(bundle, sql),
    record: (_bundle, d) => {
      log.push(`${d.decision} ${sql}`);
      return sql;
    },
    noPolicy: () => log.push(`no policy ${sql}`),
    hold: { subject: { channel: 0 }, signal: new AbortController().signal, waiting: () => log.push('waiting') },
  });
  await assert.rejects(e.authorize(step('SELECT 1'), counters), (err: unknown) => err instanceof SidecarError && err.code === 'PolicyUnavailable');
  src.set(pol);
  assert.equal(await e.authorize(step('SELECT 1'), counters), pol.bundle);
  await assert.rejects(e.authorize(step('DROP TABLE t'), counters), (err: unknown) => err instanceof SidecarError && err.code === 'Blocked');
  assert.equal(await e.authorize(step('INSERT INTO t VALUES (1)'), counters), pol.bundle);
  assert.deepEqual(log, ['no policy SELECT 1', 'Allow SELECT 1', 'Block DROP TABLE t', 'RequireApproval INSERT INTO t VALUES (1)', 'waiting']);
  assert.deepEqual(counters, { blocked: 2, approvals: 1 });
});
