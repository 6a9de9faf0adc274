/** Body and query checks of the control API, and the long-poll signals, with plain values and a fake clock. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ControlFailure } from '../src/control/errors.ts';
import { NamespaceSignals } from '../src/control/signals.ts';
import { parseApprovalAsk, parseApprovalName, parseRevision, parseSessionReport, parseWaitSeconds } from '../src/control/validate.ts';
import { FakeClock } from './fake-clock.ts';

const ask = {
  connection: 'orders-db',
  session: '01HZX9Q',
  protocol: 'ssh',
  command: 'rm -rf /tmp/x',
  classes: [],
  rule: { approvalRule: 'guard', name: 'no-rm' },
  approvers: { users: [], groups: ['dba'] },
  required: 2,
  requireReason: true,
  timeoutSeconds: 600,
  message: 'two DBAs',
};

const report = {
  session: '01HZX9Q',
  connection: 'orders-db',
  protocol: 'postgres',
  seq: 0,
  type: 'end',
  startTime: '2026-12-04T18:00:00Z',
  endTime: '2026-12-04T18:05:00.123+01:00',
  counts: { statements: 1, rows: 2, maskedValues: 3, blocked: 4, approvals: 5 },
  recording: { claimName: 'recordings', path: 'a/b', records: 9 },
};

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ControlFailure) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'valid';
}

describe('parseApprovalAsk / parseSessionReport', () => {
  test('valid bodies come back as they were', () => {
    assert.deepEqual(parseApprovalAsk(ask), ask);
    assert.deepEqual(parseSessionReport(report), report);
  });

  test('the first wrong field is named', () => {
    assert.equal(invalid(() => parseApprovalAsk(null)), 'InvalidBody: body: must be an object');
    assert.equal(invalid(() => parseApprovalAsk({ ...ask, classes: 'write' })), 'InvalidBody: classes: must be an array of at most 256 strings');
    assert.equal(invalid(() => parseApprovalAsk({ ...ask, classes: [1] })), 'InvalidBody: classes[0]: must be a string of at most 256 characters');
    assert.equal(invalid(() => parseApprovalAsk({ ...ask, timeoutSeconds: 1.5 })), 'InvalidBody: timeoutSeconds: must be an integer from 1 to 604800');
    assert.equal(invalid(() => parseApprovalAsk({ ...ask, approvers: { users: [], groups: [], admins: [] } })), 'InvalidBody: approvers.admins: unknown field');
    assert.equal(invalid(() => parseSessionReport({ ...report, startTime: 'yesterday' })), 'InvalidBody: startTime: "yesterday" is not valid');
    assert.equal(invalid(() => parseSessionReport({ ...report, seq: -1 })), 'InvalidBody: seq: must be an integer from 0 to 9007199254740991');
    assert.equal(invalid(() => parseSessionReport({ ...report, counts: { ...report.counts, rows: '2' } })), 'InvalidBody: counts.rows: must be an integer from 0 to 9007199254740991');
    assert.equal(invalid(() => parseSessionReport({ ...report, recording: { path: 'p' } })), 'InvalidBody: recording.records: must be an integer from 0 to 9007199254740991');
    assert.equal(invalid(() => parseSessionReport({ ...report, type: 'restart' })), 'InvalidBody: type: must be "start", "progress" or "end"');
  });

  test('property: any JSON value is either accepted or refused with InvalidBody, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ ...Object.fromEntries(Object.entries(ask).map(([k]) => [k, fc.jsonValue()])) })), (value) => {
        for (const parse of [parseApprovalAsk, parseSessionReport]) {
          try {
            parse(value);
          } catch (err) {
            if (!(err instanceof ControlFailure) || err.code !== 'InvalidBody' || err.status !== 400) return false;
          }
        }
        return true;
      }),
      { numRuns: 500 },
    );
  });
});

describe('query parameters', () => {
  test('waitSeconds 0..60; revision a short string; approval names DNS subdomains', () => {
    assert.equal(parseWaitSeconds(undefined), 0);
    assert.equal(parseWaitSeconds('60'), 60);
    for (const bad of ['61', '-1', '1.5', '', 'abc', ['1', '2']]) assert.match(invalid(() => parseWaitSeconds(bad)), /^InvalidQuery: waitSeconds/);
    assert.equal(parseRevision(undefined), undefined);
    assert.match(invalid(() => parseRevision('x'.repeat(200))), /^InvalidQuery/);
    assert.equal(parseApprovalName('orders-db-7f3k2'), 'orders-db-7f3k2');
    assert.match(invalid(() => parseApprovalName('../secrets')), /^InvalidQuery/);
  });
});

describe('NamespaceSignals', () => {
  test('a wake ends the sleeps of its namespace only; the timer ends the others; abort ends one', async () => {
    const clock = new FakeClock();
    const signals = new NamespaceSignals(clock);
    const ended: string[] = [];
    const controller = new AbortController();
    const a = signals.sleep('agents', 30_000, new AbortController().signal).then(() => ended.push('a'));
    const b = signals.sleep('other', 30_000, new AbortController().signal).then(() => ended.push('b'));
    const c = signals.sleep('other', 30_000, controller.signal).then(() => ended.push('c'));
    assert.equal(signals.sleeping, 3);
    signals.wake('agents');
    await a;
    assert.deepEqual(ended, ['a']);
    controller.abort();
    await c;
    assert.deepEqual(ended, ['a', 'c']);
    clock.advance(29_999);
    await Promise.resolve();
    assert.deepEqual(ended, ['a', 'c']);
    clock.advance(1);
    await b;
    assert.deepEqual(ended, ['a', 'c', 'b']);
    assert.equal(signals.sleeping, 0);
    assert.equal(clock.pending, 0, 'no timer left behind');
  });

  test('wakeAll ends every sleep (shutdown)', async () => {
    const signals = new NamespaceSignals(new FakeClock());
    const sleeps = ['a', 'b', 'c'].map((ns) => signals.sleep(ns, 60_000, new AbortController().signal));
    signals.wakeAll();
    await Promise.all(sleeps);
    assert.equal(signals.sleeping, 0);
  });
});
