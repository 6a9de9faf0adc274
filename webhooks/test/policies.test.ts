/** The validating webhook's verdict, and the shared policyVerdict it and `airlock validate` use. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { policyVerdict } from '@airlock/policy';
import type { AdmissionRequest } from '../src/admission.ts';
import { validatePolicyAdmission } from '../src/policies.ts';

function maskingPolicy(match: Record<string, unknown>, selector: Record<string, unknown> = { matchLabels: { data: 'pii' } }): Record<string, unknown> {
  return { apiVersion: 'airlock.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name: 'm', namespace: 'agents' }, spec: { connectionSelector: selector, rules: [{ name: 'r', match, action: { type: 'redact' } }] } };
}

function approvalRule(rule: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'airlock.dev/v1alpha1', kind: 'ApprovalRule', metadata: { name: 'a', namespace: 'agents' }, spec: { connectionSelector: { matchLabels: { env: 'prod' } }, rules: [{ name: 'r', ...rule }] } };
}

function admission(object: Record<string, unknown>, operation: 'CREATE' | 'UPDATE' | 'DELETE' = 'CREATE'): AdmissionRequest {
  return {
    uid: 'u',
    kind: { group: 'airlock.dev', version: 'v1alpha1', kind: String(object['kind']) },
    resource: { group: 'airlock.dev', version: 'v1alpha1', resource: 'x' },
    name: 'm',
    namespace: 'agents',
    operation,
    userInfo: { username: 'a', groups: [] },
    object,
    dryRun: false,
  };
}

test('a pattern RE2 refuses (a lookbehind, a backreference) is an error naming the field', () => {
  for (const pattern of ['(?<=x)y', '(a)\\1', '[']) {
    const verdict = policyVerdict(maskingPolicy({ pattern }));
    assert.equal(verdict.errors.length, 1, pattern);
    assert.equal(verdict.errors[0]?.field, 'spec.rules[0].match.pattern');
  }
  assert.deepEqual(policyVerdict(maskingPolicy({ pattern: 'EMP-[0-9]{6}' })).errors, []);
  const denied = validatePolicyAdmission(admission(maskingPolicy({ pattern: '(?<=x)y' })));
  assert.ok(!denied.allowed && denied.code === 422 && /^MaskingPolicy "m" is invalid: spec\.rules\[0\]\.match\.pattern: Invalid value: rule "r": /.test(denied.message), JSON.stringify(denied));
  assert.deepEqual(validatePolicyAdmission(admission(maskingPolicy({ pattern: '(?<=x)y' }), 'DELETE')), { allowed: true });
});

test('unknown detectors, bad column globs, bad selector labels', () => {
  assert.equal(policyVerdict(maskingPolicy({ detectors: ['nope'] })).errors[0]?.field, 'spec.rules[0].match.detectors');
  assert.equal(policyVerdict(maskingPolicy({ columns: ['a.b'] })).errors[0]?.field, 'spec.rules[0].match.columns');
  const selector = policyVerdict(maskingPolicy({ detectors: ['email'] }, { matchLabels: { 'bad key!': 'x', ok: 'bad value!' }, matchExpressions: [{ key: '-x', operator: 'In', values: ['y'] }] }));
  assert.deepEqual(selector.errors.map((e) => e.field), ['spec.connectionSelector.matchLabels', 'spec.connectionSelector.matchLabels.ok', 'spec.connectionSelector.matchExpressions[0].key']);
  assert.match(policyVerdict(maskingPolicy({ detectors: ['email'] }, {})).warnings[0] ?? '', /applies to every AgentConnection/);
});

test('approval rules: globs, approvers, impossible N-of-M; table-restricted rules warn', () => {
  assert.equal(policyVerdict(approvalRule({ match: { ssh: { commands: ['rm \\'] } }, action: 'Block' })).errors[0]?.field, 'spec.rules[0].match.ssh.commands[0]');
  assert.equal(policyVerdict(approvalRule({ match: { sql: { classes: ['write'] } }, action: 'RequireApproval', approval: { approvers: { users: [] } } })).errors[0]?.field, 'spec.rules[0].approval.approvers');
  assert.equal(policyVerdict(approvalRule({ match: { sql: { classes: ['write'] } }, action: 'RequireApproval', approval: { approvers: { users: ['alice'] }, required: 2 } })).errors[0]?.field, 'spec.rules[0].approval.required');
  assert.deepEqual(policyVerdict(approvalRule({ match: { sql: { classes: ['write'] } }, action: 'RequireApproval', approval: { approvers: { groups: ['dba'] }, required: 2 } })).errors, []);
  const scoped = policyVerdict(approvalRule({ match: { sql: { tables: ['public.orders'] } }, action: 'Block' }));
  assert.deepEqual(scoped.errors, []);
  assert.match(scoped.warnings[0] ?? '', /restricted to tables, but statements whose tables cannot be known .* match it anyway and get Block/);
  const allowed = validatePolicyAdmission(admission(approvalRule({ match: { sql: { tables: ['public.orders'] } }, action: 'Block' })));
  assert.ok(allowed.allowed && allowed.warnings?.length === 1);
});

test('defaultAction Allow on a connection labelled as holding PII is a warning', () => {
  const connection = (labels: Record<string, string>, defaultAction: string): Record<string, unknown> => ({
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'AgentConnection',
    metadata: { name: 'c', namespace: 'agents', labels },
    spec: { protocol: 'postgres', target: { host: 'h', port: 5432 }, credentialsSecretRef: { name: 's' }, agents: { serviceAccounts: ['x'] }, defaultAction },
  });
  assert.match(policyVerdict(connection({ 'airlock.dev/data-classification': 'pii' }, 'Allow')).warnings[0] ?? '', /defaultAction is Allow/);
  assert.deepEqual(policyVerdict(connection({ 'airlock.dev/data-classification': 'pii' }, 'Block')).warnings, []);
  assert.deepEqual(policyVerdict(connection({}, 'Allow')).warnings, []);
});

test('any object, however malformed, gets a verdict and never an exception', () => {
  fc.assert(
    fc.property(fc.constantFrom('MaskingPolicy', 'ApprovalRule', 'AgentConnection', 'Other'), fc.anything(), (kind, spec) => {
      const verdict = policyVerdict({ kind, metadata: { labels: spec }, spec });
      assert.ok(Array.isArray(verdict.errors) && Array.isArray(verdict.warnings));
    }),
    { numRuns: 2000 },
  );
  assert.equal(policyVerdict(null).errors.length, 1);
});
