import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentSession, ApprovalRequest, SessionReport } from '@airlock/api';
import { agentSessionName, appliedSeq, sessionObject, sessionOwnedBy, sessionStatus, validateReport } from '../src/sessions/report.ts';
import { planSessionRetention } from '../src/sessions/retention.ts';
import { connectionActivity } from '../src/sessions/summary.ts';
import { agentConnectionStatus } from '../src/status/connection.ts';
import { connection } from './fixtures.ts';

const POD = { namespace: 'agents', name: 'planner-7d9f', uid: 'pod-uid-1', serviceAccount: 'planner' };
const HEAD = `sha256:${'ab'.repeat(32)}`;

function report(over: Partial<SessionReport> = {}): SessionReport {
  return {
    session: '20261204T120000Z-0a1b2c3d',
    connection: 'orders-db',
    protocol: 'postgres',
    seq: 1,
    type: 'start',
    startTime: '2026-12-04T12:00:00Z',
    counts: { statements: 0, rows: 0, maskedValues: 0, blocked: 0, approvals: 0 },
    recording: { claimName: 'recordings', path: 'agents/planner-7d9f/orders-db/20261204T120000Z-0a1b2c3d.jsonl', records: 1, chainHead: HEAD },
    ...over,
  };
}

function session(name: string, status: Partial<NonNullable<AgentSession['status']>>, connectionName = 'orders-db'): AgentSession {
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'AgentSession',
    metadata: { name, namespace: 'agents', uid: `uid-${name}`, labels: { 'airlock.dev/connection': connectionName } },
    status: { connection: connectionName, pod: 'p', ...status },
  };
}

describe('session reports', () => {
  test('a valid report becomes the status; the name is the lower-cased session id', () => {
    validateReport(report());
    assert.equal(agentSessionName('20261204T120000Z-0a1b2c3d'), '20261204t120000z-0a1b2c3d');
    assert.deepEqual(sessionStatus(POD, report({ type: 'end', endTime: '2026-12-04T12:05:00.5Z', counts: { statements: 4, rows: 10, maskedValues: 3, blocked: 1, approvals: 1 } })), {
      pod: POD.name,
      serviceAccount: 'planner',
      connection: 'orders-db',
      protocol: 'postgres',
      startTime: '2026-12-04T12:00:00.000Z',
      endTime: '2026-12-04T12:05:00.500Z',
      counts: { statements: 4, rows: 10, maskedValues: 3, blocked: 1, approvals: 1 },
      recording: { claimName: 'recordings', path: 'agents/planner-7d9f/orders-db/20261204T120000Z-0a1b2c3d.jsonl', chainHead: HEAD, records: 1 },
    });
    const object = sessionObject(POD, report());
    assert.equal(object.metadata.name, '20261204t120000z-0a1b2c3d');
    assert.deepEqual(object.metadata.labels, { 'airlock.dev/connection': 'orders-db', 'airlock.dev/pod': POD.name });
    assert.equal(appliedSeq(object), -1);
  });

  test('bad reports are refused naming the field', () => {
    const bad: [Partial<SessionReport>, RegExp][] = [
      [{ session: 'no/slashes' }, /session/],
      [{ seq: -1 }, /seq/],
      [{ seq: 1.5 }, /seq/],
      [{ startTime: 'yesterday' }, /startTime/],
      [{ endTime: '2026-13-45T00:00:00Z' }, /endTime/],
      [{ counts: { statements: -1, rows: 0, maskedValues: 0, blocked: 0, approvals: 0 } }, /counts\.statements/],
      [{ recording: { path: 'x', records: 1, chainHead: 'sha256:XYZ' } }, /chainHead/],
      [{ protocol: 'mysql' as 'ssh' }, /protocol/],
      [{ type: 'middle' as 'end' }, /type/],
    ];
    for (const [over, message] of bad) {
      assert.throws(() => {
        validateReport(report(over));
      }, (err: unknown) => (err as { code?: string }).code === 'InvalidBody' && message.test((err as Error).message), JSON.stringify(over));
    }
  });

  test('applied seq and ownership from the annotations', () => {
    const s = { ...sessionObject(POD, report()), metadata: { ...sessionObject(POD, report()).metadata, annotations: { 'airlock.dev/pod-uid': POD.uid, 'airlock.dev/report-seq': '7' } } };
    assert.equal(appliedSeq(s), 7);
    assert.equal(sessionOwnedBy(s, POD), true);
    assert.equal(sessionOwnedBy(s, { ...POD, uid: 'other' }), false);
  });
});

describe('session retention', () => {
  const now = Date.parse('2026-12-31T00:00:00Z');
  test('sessions older than the connection retention (from their end, else start) are deleted; the next due time is returned', () => {
    const short = connection('orders-db', {}, { recording: { retention: '24h' } });
    const plan = planSessionRetention(
      [
        session('old-ended', { startTime: '2026-12-29T00:00:00Z', endTime: '2026-12-29T23:00:00Z' }),
        session('recent-end', { startTime: '2026-12-29T00:00:00Z', endTime: '2026-12-30T12:00:00Z' }),
        session('due-in-30m', { startTime: '2026-12-29T00:00:00Z', endTime: '2026-12-30T00:30:00Z' }),
        session('old-active', { startTime: '2026-12-29T00:00:00Z' }),
        session('other-conn-default-720h', { startTime: '2026-12-10T00:00:00Z', endTime: '2026-12-10T00:00:00Z' }, 'gone'),
        session('ancient-default', { startTime: '2026-11-01T00:00:00Z', endTime: '2026-11-01T00:00:00Z' }, 'gone'),
      ],
      [short],
      now,
    );
    assert.deepEqual(plan.expired.map((e) => [e.name, e.retention]), [['old-ended', '24h'], ['old-active', '24h'], ['ancient-default', '720h']]);
    assert.equal(plan.nextInMs, 30 * 60_000);
    // never more than an hour ahead (Node timers overflow past 24.8 days; retention is 720h by default)
    assert.equal(planSessionRetention([session('recent-end', { startTime: '2026-12-30T12:00:00Z', endTime: '2026-12-30T12:00:00Z' })], [short], now).nextInMs, 3600_000);
  });
});

describe('AgentConnection session counters', () => {
  const sessions = [1, 2, 3, 4, 5, 6, 7].map((i) =>
    session(`s${i}`, { pod: `p${i}`, startTime: `2026-12-04T12:0${i}:00Z`, ...(i % 2 === 0 ? { endTime: `2026-12-04T12:3${i}:00Z` } : {}), counts: { statements: i, rows: 0, maskedValues: 0, blocked: i === 3 ? 2 : 0, approvals: 0 } }),
  );
  const request = (name: string, connectionName: string, phase?: 'Pending' | 'Approved'): ApprovalRequest =>
    ({ apiVersion: 'airlock.dev/v1alpha1', kind: 'ApprovalRequest', metadata: { name, namespace: 'agents' }, spec: { connection: connectionName }, ...(phase === undefined ? {} : { status: { phase } }) }) as unknown as ApprovalRequest;

  test('totals, active, blocked, the newest five, and pending approvals of this connection only', () => {
    const activity = connectionActivity('orders-db', [...sessions, session('elsewhere', { startTime: '2026-12-04T13:00:00Z' }, 'other')], [
      request('a', 'orders-db'),
      request('b', 'orders-db', 'Pending'),
      request('c', 'orders-db', 'Approved'),
      request('d', 'other'),
    ]);
    assert.deepEqual(activity.sessions, { total: 7, active: 4, blocked: 2 });
    assert.deepEqual(activity.recentSessions.map((s) => s.name), ['s7', 's6', 's5', 's4', 's3']);
    assert.deepEqual(activity.recentSessions[1], { name: 's6', pod: 'p6', startTime: '2026-12-04T12:06:00Z', endTime: '2026-12-04T12:36:00Z', statements: 6, blocked: 0 });
    assert.equal(activity.pendingApprovals, 2);
  });

  test('agentConnectionStatus fills them when given the lists and keeps them when not', () => {
    const c = connection('orders-db', {});
    const inputs = { maskingPolicies: [], approvalRules: [], secretKeys: new Map([['orders-db-credentials', ['username', 'password']]]) };
    const status = agentConnectionStatus(c, { ...inputs, sessions, approvalRequests: [request('a', 'orders-db')] }, '2026-12-04T13:00:00Z');
    assert.deepEqual(status.sessions, { total: 7, active: 4, blocked: 2 });
    assert.equal(status.recentSessions?.length, 5);
    assert.equal(status.pendingApprovals, 1);
    const kept = agentConnectionStatus({ ...c, status: status as never }, inputs, '2026-12-04T13:00:00Z');
    assert.deepEqual(kept.sessions, status.sessions);
    assert.equal(kept.pendingApprovals, 1);
    assert.deepEqual(agentConnectionStatus(c, { ...inputs, sessions: [], approvalRequests: [] }, '2026-12-04T13:00:00Z').sessions, { total: 0, active: 0, blocked: 0 });
  });
});
