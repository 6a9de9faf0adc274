import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideLease, releasedLease } from '../src/leader/lease.ts';

const NOW = 1_800_000_000_000;

describe('decideLease', () => {
  test('no Lease: create it, holding it', () => {
    assert.deepEqual(decideLease(undefined, 'a', NOW, 15), {
      action: 'create',
      acquired: true,
      lease: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: NOW, renewTime: NOW, leaseTransitions: 0 },
    });
  });

  test('held by me: renew, keeping acquireTime and the transition count', () => {
    const decision = decideLease({ holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: NOW - 60_000, renewTime: NOW - 2_000, leaseTransitions: 3 }, 'a', NOW, 15);
    assert.deepEqual(decision, {
      action: 'update',
      acquired: false,
      lease: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: NOW - 60_000, renewTime: NOW, leaseTransitions: 3 },
    });
  });

  test('held by another and renewed within its duration: wait', () => {
    assert.deepEqual(decideLease({ holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: NOW - 14_999 }, 'a', NOW, 15), { action: 'wait', holder: 'b' });
  });

  test('held by another that stopped renewing: take it over, one more transition', () => {
    const decision = decideLease({ holderIdentity: 'b', leaseDurationSeconds: 15, acquireTime: NOW - 100_000, renewTime: NOW - 15_000, leaseTransitions: 1 }, 'a', NOW, 15);
    assert.ok(decision.action === 'update');
    assert.deepEqual([decision.acquired, decision.lease.holderIdentity, decision.lease.acquireTime, decision.lease.leaseTransitions], [true, 'a', NOW, 2]);
  });

  test("the holder's own duration counts, not mine", () => {
    assert.equal(decideLease({ holderIdentity: 'b', leaseDurationSeconds: 60, renewTime: NOW - 30_000 }, 'a', NOW, 15).action, 'wait');
  });

  test('a released Lease (no holder) is taken at once', () => {
    const released = releasedLease({ holderIdentity: 'b', leaseDurationSeconds: 15, acquireTime: NOW - 5_000, renewTime: NOW - 1_000, leaseTransitions: 4 }, NOW - 500);
    assert.deepEqual(released, { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: NOW - 5_000, renewTime: NOW - 500, leaseTransitions: 4 });
    const decision = decideLease(released, 'a', NOW - 400, 15);
    assert.ok(decision.action === 'update');
    assert.equal(decision.lease.holderIdentity, 'a');
  });
});
