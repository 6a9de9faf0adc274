import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DECISIONS_ANNOTATION, type ApprovalAsk, type ApprovalRequest, type RecordedDecision } from '@airlock/api';
import { signDecision } from '@airlock/policy';
import { planApprovalRequest, type ApprovalPlan } from '../src/approvals/plan.ts';
import { annotateCommand, approvalRequestBody, approvalState, labelValue, notificationText, ownedBy, rfc3339Ceil, type ApprovalRequestStatus } from '../src/approvals/request.ts';
import { progressed } from '../src/approvals/service.ts';
import { keyOf, approvalKeySecret } from '../src/approvals/key.ts';

const KEY = new Uint8Array(32).fill(3);
const T0 = Date.parse('2026-12-04T12:00:00Z');
const EXPIRES = '2026-12-04T12:10:00Z';
const HOUR = 3600_000;
const POD = { namespace: 'agents', name: 'planner-7d9f', uid: 'pod-uid-1', serviceAccount: 'planner' };

function request(over: { required?: number; requireReason?: boolean; users?: string[]; groups?: string[]; entries?: unknown[] | string; status?: ApprovalRequestStatus } = {}): ApprovalRequest {
  const annotations: Record<string, string> = {};
  if (over.entries !== undefined) annotations[DECISIONS_ANNOTATION] = typeof over.entries === 'string' ? over.entries : JSON.stringify(over.entries);
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: 'orders-db-x7k2p', namespace: 'agents', uid: 'req-uid-1', generation: 1, annotations },
    spec: {
      connection: 'orders-db',
      protocol: 'postgres',
      requester: { pod: POD.name, serviceAccount: 'planner', session: 's1' },
      command: 'DELETE FROM orders',
      classes: ['write', 'destructive'],
      rule: { approvalRule: 'prod', name: 'deletes' },
      approvers: { users: over.users ?? ['alice', 'bob', 'carol', 'system:serviceaccount:agents:planner'], groups: over.groups ?? ['dba'] },
      required: over.required ?? 1,
      requireReason: over.requireReason ?? false,
      expiresAt: EXPIRES,
    },
    ...(over.status === undefined ? {} : { status: over.status as ApprovalRequest['status'] }),
  };
}

const REF = { namespace: 'agents', name: 'orders-db-x7k2p', uid: 'req-uid-1' };
function entry(user: string, decision: 'approve' | 'deny', opts: { groups?: string[]; reason?: string; time?: string; key?: Uint8Array; ref?: typeof REF } = {}): RecordedDecision {
  const d = { user, groups: opts.groups ?? [], decision, ...(opts.reason === undefined ? {} : { reason: opts.reason }), time: opts.time ?? '2026-12-04T12:01:00Z' };
  return { ...d, signature: signDecision(opts.key ?? KEY, opts.ref ?? REF, d) };
}

function plan(r: ApprovalRequest, nowMs = T0 + 60_000, key: Uint8Array | 'none' = KEY, retentionMs = 24 * HOUR): ApprovalPlan {
  return planApprovalRequest({ request: r, key: key === 'none' ? undefined : key, nowMs, retentionMs });
}

/** the request as it is after writing the plan's status (the next reconcile's input) */
function written(r: ApprovalRequest, p: ApprovalPlan): ApprovalRequest {
  return { ...r, status: p.status as ApprovalRequest['status'] };
}

describe('planApprovalRequest', () => {
  test('a new request: Pending, Ready=True, Decided=False, requeued at expiry', () => {
    const p = plan(request());
    assert.equal(p.phase, 'Pending');
    assert.equal(p.write, true);
    assert.deepEqual(p.status.decisions, []);
    assert.deepEqual(p.status.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration]), [
      ['Ready', 'True', 'DecisionsVerified', 1],
      ['Decided', 'False', 'AwaitingDecision', 1],
    ]);
    assert.equal(p.requeueAfterMs, Date.parse(EXPIRES) - (T0 + 60_000));
    assert.equal(p.collect, false);
    assert.equal(p.transitions.length, 2);
    // recomputed unchanged: nothing to write, no transition
    const again = plan(written(request(), p), T0 + 120_000);
    assert.equal(again.write, false);
    assert.deepEqual(again.transitions, []);
  });

  test('a signed approval by an approver approves; status lists it with groups, reason and time', () => {
    const p = plan(request({ entries: [entry('alice', 'approve', { groups: ['dba'], reason: 'ticket 7' })] }));
    assert.equal(p.phase, 'Approved');
    assert.equal(p.previousPhase, 'Pending');
    assert.deepEqual(p.status.decisions, [{ user: 'alice', groups: ['dba'], decision: 'approve', reason: 'ticket 7', time: '2026-12-04T12:01:00Z' }]);
    const decided = p.status.conditions?.find((c) => c.type === 'Decided');
    assert.ok(decided);
    assert.equal(decided.status, 'True');
    assert.equal(decided.reason, 'Approved');
    assert.match(decided.message, /alice/);
    // kept for the retention (looked at again at least hourly: Node timers cannot wait 24 h), then collected
    assert.equal(p.requeueAfterMs, HOUR);
    const later = plan(written(request({ entries: [entry('alice', 'approve')] }), p), T0 + 60_000 + 24 * HOUR);
    assert.equal(later.collect, true);
  });

  test('N-of-M: two distinct approvers needed; the same user twice counts once', () => {
    const twice = plan(request({ required: 2, entries: [entry('alice', 'approve'), entry('alice', 'approve', { time: '2026-12-04T12:02:00Z' })] }));
    assert.equal(twice.phase, 'Pending');
    assert.equal(twice.status.decisions?.length, 1);
    assert.deepEqual(twice.ignored.map((i) => i.code), ['AlreadyDecided']);
    const two = plan(request({ required: 2, entries: [entry('alice', 'approve'), entry('bob', 'approve')] }));
    assert.equal(two.phase, 'Approved');
    const viaGroup = plan(request({ required: 2, entries: [entry('alice', 'approve'), entry('dave', 'approve', { groups: ['dba'] })] }));
    assert.equal(viaGroup.phase, 'Approved');
  });

  test('a deny wins; entries after the decision are ignored as NotPending', () => {
    const p = plan(request({ required: 2, entries: [entry('alice', 'approve'), entry('bob', 'deny', { reason: 'no' }), entry('carol', 'approve')] }));
    assert.equal(p.phase, 'Denied');
    assert.deepEqual(p.status.decisions?.map((d) => d.user), ['alice', 'bob']);
    assert.deepEqual(p.ignored.map((i) => [i.user, i.code]), [['carol', 'NotPending']]);
  });

  test('forged, unsigned, copied, edited or malformed entries are ignored', () => {
    const copied = entry('alice', 'approve', { ref: { ...REF, name: 'other', uid: 'other-uid' } });
    const edited = { ...entry('bob', 'deny'), decision: 'approve' as const };
    const wrongKey = entry('carol', 'approve', { key: new Uint8Array(32).fill(9) });
    const unsignedFields: Record<string, unknown> = { ...entry('alice', 'approve') };
    delete unsignedFields['signature'];
    const p = plan(request({ entries: [copied, edited, wrongKey, unsignedFields, 'junk', null] }));
    assert.equal(p.phase, 'Pending');
    assert.deepEqual(p.status.decisions, []);
    assert.deepEqual(p.ignored.map((i) => i.code), ['BadSignature', 'BadSignature', 'BadSignature', 'BadSignature', 'BadSignature', 'BadSignature']);
    const broken = plan(request({ entries: '{not json' }));
    assert.deepEqual(broken.ignored.map((i) => i.code), ['Malformed']);
    assert.equal(broken.phase, 'Pending');
  });

  test('signed entries that review refuses: self-approval, non-approver, missing reason, after expiry', () => {
    const self = entry('system:serviceaccount:agents:planner', 'approve', { groups: ['system:serviceaccounts'] });
    const stranger = entry('mallory', 'approve');
    const late = entry('alice', 'approve', { time: '2026-12-04T12:10:00Z' });
    const p = plan(request({ entries: [self, stranger, late] }));
    assert.deepEqual(p.ignored.map((i) => i.code), ['SelfApproval', 'NotApprover', 'Expired']);
    const reasonless = plan(request({ requireReason: true, entries: [entry('alice', 'approve'), entry('bob', 'approve', { reason: 'ok' })] }));
    assert.deepEqual(reasonless.ignored.map((i) => i.code), ['ReasonRequired']);
    assert.equal(reasonless.phase, 'Approved');
    assert.deepEqual(reasonless.status.decisions?.map((d) => d.user), ['bob']);
  });

  test('a decision made before expiry counts even when reconciled after it', () => {
    const p = plan(request({ entries: [entry('alice', 'approve', { time: '2026-12-04T12:09:59Z' })] }), Date.parse(EXPIRES) + 5000);
    assert.equal(p.phase, 'Approved');
  });

  test('no decision by expiresAt: Expired, Event-worthy transition, collected after the retention', () => {
    const at = Date.parse(EXPIRES);
    const before = plan(request(), at - 1);
    assert.equal(before.phase, 'Pending');
    assert.equal(before.requeueAfterMs, 1);
    const p = plan(written(request(), before), at);
    assert.equal(p.phase, 'Expired');
    assert.equal(p.previousPhase, 'Pending');
    assert.deepEqual(p.transitions.map((c) => [c.type, c.status, c.reason]), [['Decided', 'True', 'Expired']]);
    assert.equal(p.requeueAfterMs, HOUR);
    assert.equal(plan(written(request(), p), at + 24 * HOUR - 1000).requeueAfterMs, 1000);
    assert.equal(plan(written(request(), p), at + 24 * HOUR - 1000).collect, false);
    assert.equal(plan(written(request(), p), at + 24 * HOUR).collect, true);
  });

  test('a decided phase never changes: a later valid-looking entry does not turn Expired into Approved', () => {
    const expired = plan(request(), Date.parse(EXPIRES));
    const p = plan(written(request({ entries: [entry('alice', 'approve', { time: '2026-12-04T12:05:00Z' })] }), expired), Date.parse(EXPIRES) + 1000);
    assert.equal(p.phase, 'Expired');
    assert.equal(p.write, false);
  });

  test('without the approval key nothing verifies: Ready=False, phase from expiry only', () => {
    const p = plan(request({ entries: [entry('alice', 'approve')] }), T0 + 60_000, 'none');
    assert.equal(p.phase, 'Pending');
    assert.equal(p.ignored.length, 0);
    assert.deepEqual(p.status.conditions?.map((c) => [c.type, c.status, c.reason]), [
      ['Ready', 'False', 'ApprovalKeyUnavailable'],
      ['Decided', 'False', 'AwaitingDecision'],
    ]);
  });
});

describe('ApprovalRequest objects', () => {
  const ask: ApprovalAsk = {
    connection: 'orders-db',
    session: '20261204T120000Z-0a1b2c3d',
    protocol: 'postgres',
    command: 'DELETE FROM orders',
    classes: ['write', 'destructive', 'write'],
    rule: { approvalRule: 'prod', name: 'deletes' },
    approvers: { users: ['alice'], groups: ['dba'] },
    required: 2,
    requireReason: true,
    timeoutSeconds: 300,
    message: 'Deletes need two DBAs.',
  };

  test('the body: generateName, labels, spec per the CRD, expiry rounded up to whole seconds, owner when given', () => {
    const body = approvalRequestBody(POD, ask, T0 + 400, { name: 's', uid: 'sess-uid' });
    assert.equal(body.metadata.generateName, 'orders-db-');
    assert.deepEqual(body.metadata.labels, { 'airlock.dev/connection': 'orders-db', 'airlock.dev/pod': POD.name, 'airlock.dev/session': '20261204t120000z-0a1b2c3d' });
    assert.equal(body.metadata.annotations?.['airlock.dev/pod-uid'], POD.uid);
    assert.equal(body.metadata.annotations['airlock.dev/message'], 'Deletes need two DBAs.');
    assert.deepEqual(body.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]), [['AgentSession', 's', 'sess-uid']]);
    assert.deepEqual(body.spec.requester, { pod: POD.name, serviceAccount: 'planner', session: '20261204t120000z-0a1b2c3d' });
    assert.deepEqual(body.spec.classes, ['write', 'destructive']);
    assert.equal(body.spec.expiresAt, '2026-12-04T12:05:01Z');
    assert.equal(approvalRequestBody(POD, ask, T0).spec.expiresAt, '2026-12-04T12:05:00Z');
    assert.equal(approvalRequestBody(POD, ask, T0).metadata.ownerReferences, undefined);
  });

  test('label values: long pod names are left out', () => {
    assert.equal(labelValue('a'.repeat(63)), 'a'.repeat(63));
    assert.equal(labelValue('a'.repeat(64)), undefined);
    assert.equal(labelValue('-x'), undefined);
    assert.equal(rfc3339Ceil(T0 + 1), '2026-12-04T12:00:01Z');
  });

  test('ownership: same namespace, pod name and uid', () => {
    const r = { ...approvalRequestBody(POD, ask, T0), metadata: { ...approvalRequestBody(POD, ask, T0).metadata, name: 'x' } };
    assert.equal(ownedBy(r, POD), true);
    assert.equal(ownedBy(r, { ...POD, uid: 'a-later-pod-of-the-same-name' }), false);
    assert.equal(ownedBy(r, { ...POD, name: 'other' }), false);
    assert.equal(ownedBy(r, { ...POD, namespace: 'other' }), false);
  });

  test('state, annotate command and notification text', () => {
    const r = request({ status: { phase: 'Denied', decisions: [{ user: 'bob', groups: ['dba'], decision: 'deny', reason: 'no', time: '2026-12-04T12:01:00Z' }] } });
    assert.deepEqual(approvalState(r), { name: 'orders-db-x7k2p', phase: 'Denied', decisions: [{ user: 'bob', decision: 'deny', reason: 'no', time: '2026-12-04T12:01:00Z' }] });
    assert.equal(approvalState(request()).phase, 'Pending');
    assert.equal(annotateCommand('agents', 'x'), 'kubectl annotate approvalrequest x -n agents airlock.dev/decision=approve');
    const text = notificationText(request({ requireReason: true }), 'Deletes need a DBA.');
    assert.match(text, /Deletes need a DBA\./);
    assert.match(text, /kubectl annotate approvalrequest orders-db-x7k2p -n agents airlock\.dev\/decision=approve airlock\.dev\/reason="<why>"/);
    assert.match(text, /airlock\.dev\/decision=deny/);
    assert.match(text, /DELETE FROM orders/);
  });

  test('progress for waiters: a phase change or a new decision, never going back', () => {
    const pending = { name: 'x', phase: 'Pending' as const, decisions: [] };
    const one = { ...pending, decisions: [{ user: 'a', decision: 'approve' as const, time: 't' }] };
    assert.equal(progressed(pending, pending), false);
    assert.equal(progressed(pending, one), true);
    assert.equal(progressed(one, pending), false);
    assert.equal(progressed(pending, { ...one, phase: 'Approved' }), true);
    assert.equal(progressed({ ...one, phase: 'Approved' }, pending), false);
  });

  test('the approval key Secret round-trips and short keys are refused', () => {
    assert.deepEqual(keyOf(approvalKeySecret('airlock-system', KEY)), KEY);
    assert.equal(keyOf(approvalKeySecret('airlock-system', new Uint8Array(16))), undefined);
    assert.equal(keyOf(undefined), undefined);
  });
});
