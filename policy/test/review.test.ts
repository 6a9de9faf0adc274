import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { RecordedDecision } from '@airlock/api';
import { phaseOf, reviewDecision, signDecision, verifyDecision, type ReviewRequest, type Reviewer, type ReviewVerdict } from '@airlock/policy';

const NOW = new Date('2026-12-04T12:00:00Z');
const LATER = new Date('2026-12-04T12:10:00Z');

function request(over: Partial<ReviewRequest> = {}): ReviewRequest {
  return {
    phase: 'Pending',
    approvers: { users: ['alice', 'bob', 'carol'], groups: ['dba'] },
    required: 1,
    requireReason: false,
    requesterServiceAccount: 'agents/planner',
    namespace: 'agents',
    expiresAt: LATER,
    decisions: [],
    ...over,
  };
}
const codeOf = (v: ReviewVerdict): string => (v.ok ? 'ok' : v.code);
function withoutReason<T extends { reason?: string }>(d: T): Omit<T, 'reason'> {
  const copy: Partial<T> = { ...d };
  delete copy.reason;
  return copy as Omit<T, 'reason'>;
}
const alice: Reviewer = { user: 'alice', groups: [] };
const bob: Reviewer = { user: 'bob', groups: ['devs'] };

test('an approver approves a 1-of-M request', () => {
  assert.deepEqual(reviewDecision(request(), alice, 'approve', undefined, NOW), { ok: true, phase: 'Approved' });
});

test('N-of-M needs N distinct approvers', () => {
  const r = request({ required: 2 });
  assert.deepEqual(reviewDecision(r, alice, 'approve', undefined, NOW), { ok: true, phase: 'Pending' });
  const after = { ...r, decisions: [{ user: 'alice', decision: 'approve' as const }] };
  assert.deepEqual(reviewDecision(after, bob, 'approve', undefined, NOW), { ok: true, phase: 'Approved' });
  const dup = reviewDecision(after, alice, 'approve', undefined, NOW);
  assert.equal(dup.ok, false);
  assert.equal(codeOf(dup), 'AlreadyDecided');
});

test('a deny wins, even after approvals', () => {
  const r = request({ required: 3, decisions: [{ user: 'alice', decision: 'approve' }, { user: 'bob', decision: 'approve' }] });
  assert.deepEqual(reviewDecision(r, { user: 'carol', groups: [] }, 'deny', undefined, NOW), { ok: true, phase: 'Denied' });
  assert.equal(phaseOf({ ...r, decisions: [...r.decisions, { user: 'x', decision: 'deny' }, { user: 'y', decision: 'approve' }] }, NOW), 'Denied');
});

test('a reason is required when requireReason, and blank does not count', () => {
  const r = request({ requireReason: true });
  for (const reason of [undefined, '', '   ']) {
    const v = reviewDecision(r, alice, 'approve', reason, NOW);
    assert.equal(codeOf(v), 'ReasonRequired');
  }
  assert.deepEqual(reviewDecision(r, alice, 'deny', 'not now', NOW), { ok: true, phase: 'Denied' });
});

test('the requesting service account may not decide, even when it is an approver', () => {
  const sa = 'system:serviceaccount:agents:planner';
  const r = request({ approvers: { users: [sa], groups: ['system:serviceaccounts'] } });
  const v = reviewDecision(r, { user: sa, groups: ['system:serviceaccounts'] }, 'approve', undefined, NOW);
  assert.equal(codeOf(v), 'SelfApproval');
  // a bare name means the request's namespace
  const bare = reviewDecision({ ...r, requesterServiceAccount: 'planner' }, { user: sa, groups: [] }, 'approve', undefined, NOW);
  assert.equal(codeOf(bare), 'SelfApproval');
  // another service account of the same namespace may, when listed
  const other = reviewDecision(r, { user: 'system:serviceaccount:agents:reviewer', groups: ['system:serviceaccounts'] }, 'approve', undefined, NOW);
  assert.deepEqual(other, { ok: true, phase: 'Approved' });
  // the same SA name in another namespace is someone else
  const elsewhere = reviewDecision(request({ approvers: { users: ['system:serviceaccount:ops:planner'], groups: [] } }), { user: 'system:serviceaccount:ops:planner', groups: [] }, 'approve', undefined, NOW);
  assert.deepEqual(elsewhere, { ok: true, phase: 'Approved' });
});

test('approvers match by user or by any group; others are refused', () => {
  assert.deepEqual(reviewDecision(request(), { user: 'dave', groups: ['devs', 'dba'] }, 'approve', undefined, NOW), { ok: true, phase: 'Approved' });
  const v = reviewDecision(request(), { user: 'mallory', groups: ['devs'] }, 'approve', undefined, NOW);
  assert.equal(codeOf(v), 'NotApprover');
  const deny = reviewDecision(request(), { user: 'mallory', groups: [] }, 'deny', undefined, NOW);
  assert.equal(codeOf(deny), 'NotApprover');
});

test('decided or withdrawn requests are not pending', () => {
  for (const phase of ['Approved', 'Denied', 'Expired', 'Withdrawn'] as const) {
    const v = reviewDecision(request({ phase }), alice, 'approve', undefined, NOW);
    assert.equal(codeOf(v), 'NotPending', phase);
  }
});

test('expired requests refuse decisions at and after expiresAt', () => {
  for (const now of [LATER, new Date(LATER.getTime() + 1)]) {
    const v = reviewDecision(request(), alice, 'approve', undefined, now);
    assert.equal(codeOf(v), 'Expired');
  }
  assert.equal(reviewDecision(request(), alice, 'approve', undefined, new Date(LATER.getTime() - 1)).ok, true);
});

test('only approve and deny are decisions', () => {
  for (const d of ['Approve', 'yes', '', 'approve ']) {
    const v = reviewDecision(request(), alice, d, undefined, NOW);
    assert.equal(codeOf(v), 'InvalidDecision', d);
  }
});

test('phaseOf: pending, approved by distinct users, expired, decided wins over expiry', () => {
  const base = request({ required: 2 });
  assert.equal(phaseOf(base, NOW), 'Pending');
  assert.equal(phaseOf({ ...base, decisions: [{ user: 'a', decision: 'approve' }, { user: 'a', decision: 'approve' }] }, NOW), 'Pending');
  assert.equal(phaseOf({ ...base, decisions: [{ user: 'a', decision: 'approve' }, { user: 'b', decision: 'approve' }] }, NOW), 'Approved');
  assert.equal(phaseOf(base, LATER), 'Expired');
  assert.equal(phaseOf({ ...base, decisions: [{ user: 'a', decision: 'approve' }, { user: 'b', decision: 'approve' }] }, LATER), 'Approved');
  assert.equal(phaseOf({ ...base, decisions: [{ user: 'a', decision: 'deny' }] }, LATER), 'Denied');
});

test('fast-check: a verdict never approves with fewer than required distinct approvers, and any deny denies', () => {
  const users = fc.constantFrom('alice', 'bob', 'carol', 'dave', 'system:serviceaccount:agents:planner');
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.record({ user: users, decision: fc.constantFrom('approve' as const, 'deny' as const) }), { maxLength: 6 }),
      (required, steps) => {
        let r = request({ required, approvers: { users: ['alice', 'bob', 'carol', 'system:serviceaccount:agents:planner'], groups: [] } });
        for (const s of steps) {
          const v = reviewDecision(r, { user: s.user, groups: [] }, s.decision, undefined, NOW);
          if (!v.ok) continue;
          r = { ...r, phase: v.phase, decisions: [...r.decisions, s] };
          const approvers = new Set(r.decisions.filter((d) => d.decision === 'approve').map((d) => d.user));
          if (v.phase === 'Approved') assert.ok(approvers.size >= required);
          if (r.decisions.some((d) => d.decision === 'deny')) assert.equal(v.phase, 'Denied');
          assert.ok(!r.decisions.some((d) => d.user.startsWith('system:serviceaccount:agents:planner')));
          assert.equal(new Set(r.decisions.map((d) => d.user)).size, r.decisions.length);
        }
      },
    ),
    { numRuns: 500 },
  );
});

// ── signatures ──────────────────────────────────────────────────────────────────────────

const KEY = new Uint8Array(32).fill(7);
const REF = { namespace: 'agents', name: 'db-x7k2p', uid: '0b6f3c1e-1111-2222-3333-444455556666' };
const DECISION: Omit<RecordedDecision, 'signature'> = { user: 'alice', groups: ['dba', 'system:authenticated'], decision: 'approve', reason: 'ticket 42', time: '2026-12-04T12:01:00Z' };
const signed = (d = DECISION, ref = REF, key = KEY): RecordedDecision => ({ ...d, signature: signDecision(key, ref, d) });

test('a signed decision verifies with the same key and request', () => {
  const d = signed();
  assert.match(d.signature, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(verifyDecision(KEY, REF, d), true);
  // key order of the entry (e.g. after a JSON round trip through an annotation) does not matter
  const reordered = JSON.parse(JSON.stringify({ signature: d.signature, time: d.time, reason: d.reason, decision: d.decision, groups: d.groups, user: d.user })) as RecordedDecision;
  assert.equal(verifyDecision(KEY, REF, reordered), true);
  // without a reason
  const noReason = withoutReason(DECISION);
  assert.equal(verifyDecision(KEY, REF, signed(noReason)), true);
  assert.equal(verifyDecision(KEY, REF, { ...signed(noReason), reason: '' }), false);
});

test('a signature is bound to the namespace, name, uid and key', () => {
  const d = signed();
  assert.equal(verifyDecision(KEY, { ...REF, namespace: 'other' }, d), false);
  assert.equal(verifyDecision(KEY, { ...REF, name: 'db-other' }, d), false);
  assert.equal(verifyDecision(KEY, { ...REF, uid: 'another-uid' }, d), false);
  assert.equal(verifyDecision(new Uint8Array(32).fill(8), REF, d), false);
  assert.equal(verifyDecision(new Uint8Array(0), REF, d), false);
});

test('malformed entries and signatures do not verify (and do not throw)', () => {
  const d = signed();
  const bad: unknown[] = [
    null, 'x', 42, {}, { ...d, signature: '' }, { ...d, signature: `${d.signature}=` }, { ...d, signature: 'A'.repeat(43) },
    { ...d, groups: 'dba' }, { ...d, groups: [1] }, { ...d, decision: 'APPROVE' }, { ...d, reason: 5 }, { ...d, user: undefined },
    { ...d, signature: d.signature.slice(0, -1) },
  ];
  for (const b of bad) assert.equal(verifyDecision(KEY, REF, b as RecordedDecision), false, JSON.stringify(b));
  // base64url's spare bits: another text decoding to the same bytes is still refused
  const last = d.signature.at(-1) ?? 'A';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const twin = alphabet[(alphabet.indexOf(last) & ~3) | ((alphabet.indexOf(last) + 1) & 3)] ?? 'A';
  assert.equal(verifyDecision(KEY, REF, { ...d, signature: d.signature.slice(0, -1) + twin }), false);
});

test('fast-check: changing any signed field, the request or the signature breaks verification', () => {
  const decision = fc.record({
    user: fc.string({ minLength: 1, maxLength: 20 }),
    groups: fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
    decision: fc.constantFrom('approve' as const, 'deny' as const),
    reason: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
    time: fc.date({ noInvalidDate: true, min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z') }).map((t) => t.toISOString()),
  });
  const ref = fc.record({ namespace: fc.string({ minLength: 1, maxLength: 12 }), name: fc.string({ minLength: 1, maxLength: 12 }), uid: fc.uuid() });
  const key = fc.uint8Array({ minLength: 16, maxLength: 48 });
  const change = fc.constantFrom('user', 'groups+', 'groups-', 'groupsOrder', 'decision', 'reason', 'reasonDrop', 'time', 'namespace', 'name', 'uid', 'signature', 'key');
  fc.assert(
    fc.property(key, ref, decision, change, fc.string({ minLength: 1, maxLength: 5 }), (k, r, raw, what, extra) => {
      const d: Omit<RecordedDecision, 'signature'> = raw.reason === undefined ? { user: raw.user, groups: raw.groups, decision: raw.decision, time: raw.time } : raw;
      const entry: RecordedDecision = { ...d, signature: signDecision(k, r, d) };
      assert.equal(verifyDecision(k, r, entry), true);
      let e: RecordedDecision = entry;
      let rr = r;
      let kk = k;
      switch (what) {
        case 'user': e = { ...entry, user: entry.user + extra }; break;
        case 'groups+': e = { ...entry, groups: [...entry.groups, extra] }; break;
        case 'groups-': if (entry.groups.length === 0) return; e = { ...entry, groups: entry.groups.slice(1) }; break;
        case 'groupsOrder': {
          const rev = [...entry.groups].reverse();
          if (JSON.stringify(rev) === JSON.stringify(entry.groups)) return;
          e = { ...entry, groups: rev }; break;
        }
        case 'decision': e = { ...entry, decision: entry.decision === 'approve' ? 'deny' : 'approve' }; break;
        case 'reason': e = { ...entry, reason: (entry.reason ?? '') + extra }; break;
        case 'reasonDrop': if (entry.reason === undefined) return; e = withoutReason(entry); break;
        case 'time': e = { ...entry, time: new Date(Date.parse(entry.time) + 1000).toISOString() }; break;
        case 'namespace': rr = { ...r, namespace: r.namespace + extra }; break;
        case 'name': rr = { ...r, name: r.name + extra }; break;
        case 'uid': rr = { ...r, uid: `${r.uid}x` }; break;
        case 'signature': {
          const s = entry.signature;
          const c = s[0] === 'A' ? 'B' : 'A';
          e = { ...entry, signature: c + s.slice(1) }; break;
        }
        case 'key': kk = Uint8Array.from(k, (b, i) => (i === 0 ? b ^ 1 : b)); break;
      }
      assert.equal(verifyDecision(kk, rr, e), false, what);
    }),
    { numRuns: 2000 },
  );
});
