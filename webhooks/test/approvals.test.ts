import { test } from 'node:test';
import assert from 'node:assert/strict';
import jsonPatch, { type Operation } from 'fast-json-patch';
import { DECISION_ANNOTATION, DECISIONS_ANNOTATION, REASON_ANNOTATION, type RecordedDecision } from '@airlock/api';
import { verifyDecision } from '@airlock/policy';
import type { AdmissionRequest, AdmissionVerdict } from '../src/admission.ts';
import { parseRecordedDecisions, reviewApprovalAdmission } from '../src/approvals.ts';

const KEY = new Uint8Array(32).fill(7);
const NOW = new Date('2026-12-04T12:00:00Z');
const REF = { namespace: 'agents', name: 'req-1', uid: 'uid-1' };

function stored(annotations: Record<string, string> = {}, spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: 'req-1', namespace: 'agents', uid: 'uid-1', annotations },
    spec: {
      connection: 'orders-db',
      protocol: 'postgres',
      requester: { pod: 'agent-0', serviceAccount: 'agent' },
      command: 'DELETE FROM t WHERE id = 1',
      rule: { approvalRule: 'r', name: 'w' },
      approvers: { users: ['alice'], groups: ['dba'] },
      required: 2,
      expiresAt: '2026-12-04T13:00:00Z',
      ...spec,
    },
    status,
  };
}

function update(old: Record<string, unknown>, added: Record<string, string>, user: string, groups: readonly string[] = []): AdmissionRequest {
  const object = jsonPatch.deepClone(old) as { metadata: { annotations: Record<string, string> } };
  Object.assign(object.metadata.annotations, added);
  return {
    uid: 'u',
    kind: { group: 'airlock.dev', version: 'v1alpha1', kind: 'ApprovalRequest' },
    resource: { group: 'airlock.dev', version: 'v1alpha1', resource: 'approvalrequests' },
    name: 'req-1',
    namespace: 'agents',
    operation: 'UPDATE',
    userInfo: { username: user, groups },
    object,
    oldObject: old,
    dryRun: false,
  };
}

/** the object after the verdict's patch */
function patched(request: AdmissionRequest, verdict: AdmissionVerdict): { annotations: Record<string, string>; decisions: RecordedDecision[] } {
  assert.ok(verdict.allowed, JSON.stringify(verdict));
  const doc = jsonPatch.applyPatch(jsonPatch.deepClone(request.object), (verdict.patch ?? []) as Operation[]).newDocument as { metadata: { annotations: Record<string, string> } };
  const decisions = parseRecordedDecisions(doc.metadata.annotations[DECISIONS_ANNOTATION]);
  if (decisions === undefined || typeof decisions === 'string') assert.fail(`no readable decisions: ${String(decisions)}`);
  return { annotations: doc.metadata.annotations, decisions: [...decisions] };
}

function refusal(verdict: AdmissionVerdict): string {
  if (verdict.allowed) assert.fail(`expected a refusal: ${JSON.stringify(verdict)}`);
  return verdict.message;
}

test('a decision by an approver (by group) is recorded with the identity of the request, signed, and the annotations consumed', () => {
  const req = update(stored(), { [DECISION_ANNOTATION]: 'approve', [REASON_ANNOTATION]: 'ok' }, 'bob', ['dba', 'system:authenticated']);
  const result = patched(req, reviewApprovalAdmission(req, KEY, NOW));
  assert.equal(result.annotations[DECISION_ANNOTATION], undefined);
  assert.equal(result.annotations[REASON_ANNOTATION], undefined);
  assert.equal(result.decisions.length, 1);
  const d = result.decisions[0];
  assert.ok(d);
  assert.deepEqual({ ...d, signature: '' }, { user: 'bob', groups: ['dba', 'system:authenticated'], decision: 'approve', reason: 'ok', time: NOW.toISOString(), signature: '' });
  assert.ok(verifyDecision(KEY, REF, d));
  assert.ok(!verifyDecision(KEY, { ...REF, uid: 'other' }, d));
});

test('the annotation text never names the reviewer: the user is the admission userInfo', () => {
  const req = update(stored(), { [DECISION_ANNOTATION]: 'approve', 'airlock.dev/user': 'alice' }, 'bob', ['dba']);
  const [d] = patched(req, reviewApprovalAdmission(req, KEY, NOW)).decisions;
  assert.equal(d?.user, 'bob');
});

test('N-of-M appends to the decisions of the OLD object and counts distinct reviewers', () => {
  const first = update(stored(), { [DECISION_ANNOTATION]: 'approve' }, 'alice');
  const afterFirst = patched(first, reviewApprovalAdmission(first, KEY, NOW));
  const old = stored({ [DECISIONS_ANNOTATION]: afterFirst.annotations[DECISIONS_ANNOTATION] ?? '' });
  assert.match(refusal(reviewApprovalAdmission(update(old, { [DECISION_ANNOTATION]: 'approve' }, 'alice', ['dba']), KEY, NOW)), /^AlreadyDecided: alice/);
  const second = update(old, { [DECISION_ANNOTATION]: 'approve' }, 'carol', ['dba']);
  const verdict = reviewApprovalAdmission(second, KEY, NOW);
  assert.deepEqual(verdict.warnings, ['decision recorded: carol approved (phase now Approved)']);
  const both = patched(second, verdict);
  assert.deepEqual(both.decisions.map((d) => d.user), ['alice', 'carol']);
  // decided by the recorded decisions even before the operator writes status
  const third = update(stored({ [DECISIONS_ANNOTATION]: both.annotations[DECISIONS_ANNOTATION] ?? '' }), { [DECISION_ANNOTATION]: 'deny' }, 'dave', ['dba']);
  assert.match(refusal(reviewApprovalAdmission(third, KEY, NOW)), /^NotPending: the request is already Approved/);
});

test('refusals: non-approver, self-approval, not pending, expired, missing reason, bad decision word', () => {
  const decide = (user: string, groups: string[], extra: Record<string, string> = {}, obj = stored()): string =>
    refusal(reviewApprovalAdmission(update(obj, { [DECISION_ANNOTATION]: 'approve', ...extra }, user, groups), KEY, NOW));
  assert.match(decide('mallory', ['devs']), /^NotApprover: mallory is not an approver/);
  assert.match(decide('system:serviceaccount:agents:agent', ['dba']), /^SelfApproval: /);
  assert.match(decide('alice', [], {}, stored({}, {}, { phase: 'Denied' })), /^NotPending: the request is already Denied/);
  assert.match(decide('alice', [], {}, stored({}, { expiresAt: '2026-12-04T11:59:59Z' })), /^Expired: the request expired at 2026-12-04T11:59:59.000Z/);
  assert.match(decide('alice', [], {}, stored({}, { requireReason: true })), /^ReasonRequired/);
  assert.match(decide('alice', [], { [REASON_ANNOTATION]: '   ' }, stored({}, { requireReason: true })), /^ReasonRequired/);
  assert.match(refusal(reviewApprovalAdmission(update(stored(), { [DECISION_ANNOTATION]: 'yes' }, 'alice'), KEY, NOW)), /^InvalidDecision/);
});

test('any change to the recorded decisions is refused, and a new request carries none', () => {
  const entry = JSON.stringify([{ user: 'alice', groups: [], decision: 'approve', time: NOW.toISOString(), signature: 'x' }]);
  assert.match(refusal(reviewApprovalAdmission(update(stored(), { [DECISIONS_ANNOTATION]: entry }, 'admin', ['system:masters']), KEY, NOW)), /written only by Airlock's approval webhook/);
  const withEntry = stored({ [DECISIONS_ANNOTATION]: entry });
  const edited = update(withEntry, { [DECISIONS_ANNOTATION]: entry.replace('alice', 'root') }, 'admin');
  assert.match(refusal(reviewApprovalAdmission(edited, KEY, NOW)), /written only by/);
  const removed = update(withEntry, {}, 'admin');
  Reflect.deleteProperty((removed.object as { metadata: { annotations: Record<string, string> } }).metadata.annotations, DECISIONS_ANNOTATION);
  assert.match(refusal(reviewApprovalAdmission(removed, KEY, NOW)), /written only by/);
  // with a decision in the same update: still refused
  assert.match(refusal(reviewApprovalAdmission(update(stored(), { [DECISIONS_ANNOTATION]: entry, [DECISION_ANNOTATION]: 'approve' }, 'alice'), KEY, NOW)), /written only by/);
  const create: AdmissionRequest = { ...update(stored({ [DECISIONS_ANNOTATION]: entry }), {}, 'operator'), operation: 'CREATE' };
  assert.match(refusal(reviewApprovalAdmission(create, KEY, NOW)), /a new ApprovalRequest carries no recorded decisions/);
  const createDecided: AdmissionRequest = { ...update(stored({ [DECISION_ANNOTATION]: 'approve' }), {}, 'operator'), operation: 'CREATE' };
  assert.match(refusal(reviewApprovalAdmission(createDecided, KEY, NOW)), /not at creation/);
  const plainCreate: AdmissionRequest = { ...update(stored(), {}, 'operator'), operation: 'CREATE' };
  assert.deepEqual(reviewApprovalAdmission(plainCreate, KEY, NOW), { allowed: true });
});

test('other updates pass untouched; a reason alone is refused; no key fails closed', () => {
  assert.deepEqual(reviewApprovalAdmission(update(stored(), { team: 'x' }, 'anyone'), KEY, NOW), { allowed: true });
  assert.match(refusal(reviewApprovalAdmission(update(stored(), { [REASON_ANNOTATION]: 'because' }, 'alice'), KEY, NOW)), /set the reason together with/);
  const verdict = reviewApprovalAdmission(update(stored(), { [DECISION_ANNOTATION]: 'approve' }, 'alice'), undefined, NOW);
  assert.ok(!verdict.allowed && verdict.code === 503, JSON.stringify(verdict));
});

test('unreadable recorded decisions block further decisions', () => {
  const old = stored({ [DECISIONS_ANNOTATION]: '{not json' });
  assert.match(refusal(reviewApprovalAdmission(update(old, { [DECISION_ANNOTATION]: 'approve' }, 'alice'), KEY, NOW)), /cannot be read/);
  assert.equal(parseRecordedDecisions(undefined), undefined);
  const bad = parseRecordedDecisions('[{"user":1}]');
  assert.ok(typeof bad === 'string' && /not a recorded decision/.test(bad));
});
