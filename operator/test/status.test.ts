import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MaskingPolicy } from '@airlock/api';
import { notableTransitions, settleConditions, transitions, type Condition } from '../src/conditions.ts';
import { agentConnectionStatus, credentialsCondition } from '../src/status/connection.ts';
import { approvalRuleStatus, maskingPolicyStatus } from '../src/status/policy.ts';
import { approvalRule, connection, maskingPolicy } from './fixtures.ts';

const T0 = '2026-12-04T10:00:00Z';
const T1 = '2026-12-04T11:00:00Z';

function ready(conditions: readonly Condition[]): Condition {
  const found = conditions.find((c) => c.type === 'Ready');
  assert.ok(found);
  return found;
}

describe('MaskingPolicy status', () => {
  const orders = connection('orders-db', { data: 'pii' });
  const other = connection('other', { data: 'none' });

  test('rules that compile: Ready=True, the generation, and the connections it selects', () => {
    const status = maskingPolicyStatus(maskingPolicy('pii', 'EMP-[0-9]{6}'), [other, orders], T0);
    assert.deepEqual(status, {
      observedGeneration: 2,
      conditions: [{ type: 'Ready', status: 'True', observedGeneration: 2, lastTransitionTime: T0, reason: 'RulesCompiled', message: 'Every rule of the MaskingPolicy compiles.' }],
      connections: ['orders-db'],
    });
  });

  test('a pattern RE2 rejects (a lookbehind): Ready=False, InvalidRule, the rule named', () => {
    const c = ready(maskingPolicyStatus(maskingPolicy('pii', '(?<=x)y'), [], T0).conditions);
    assert.equal(c.status, 'False');
    assert.equal(c.reason, 'InvalidRule');
    assert.match(c.message, /^A rule of the MaskingPolicy does not compile: rule "employee-ids": .+\.$/);
  });

  test('an unknown detector is named too', () => {
    const policy = maskingPolicy('pii', 'x');
    const rules: MaskingPolicy['spec']['rules'] = [{ name: 'mystery', match: { detectors: ['nope' as 'email'] }, action: { type: 'redact' } }];
    const bad = { ...policy, spec: { ...policy.spec, rules } };
    assert.match(ready(maskingPolicyStatus(bad, [], T0).conditions).message, /rule "mystery": unknown detector "nope"/);
  });

  test('recomputing an unchanged status keeps lastTransitionTime; a flip moves it', () => {
    const first = maskingPolicyStatus(maskingPolicy('pii', 'EMP'), [], T0);
    const same = maskingPolicyStatus({ ...maskingPolicy('pii', 'EMP'), status: first as never }, [], T1);
    assert.deepEqual(same, first);
    const broken = maskingPolicyStatus({ ...maskingPolicy('pii', '(?<=x)y'), status: first as never }, [], T1);
    assert.equal(ready(broken.conditions).lastTransitionTime, T1);
  });
});

describe('ApprovalRule status', () => {
  test('globs that compile, Allow rules for subjects included: Ready=True', () => {
    const status = approvalRuleStatus(approvalRule('ops', 'kubectl get *'), [connection('bastion', { env: 'prod' })], T0);
    assert.equal(ready(status.conditions).status, 'True');
    assert.deepEqual(status.connections, ['bastion']);
  });

  test('a malformed glob in an Allow rule for a subject: Ready=False naming the rule', () => {
    const c = ready(approvalRuleStatus(approvalRule('ops', 'rm \\'), [], T0).conditions);
    assert.equal(c.status, 'False');
    assert.equal(c.reason, 'InvalidRule');
    assert.match(c.message, /rule "ops\/shell"/);
  });
});

describe('AgentConnection status', () => {
  const orders = connection('orders-db', { data: 'pii', env: 'prod' });
  const secrets = new Map([['orders-db-credentials', ['username', 'password']]]);

  test('Secret present, policies compile: Ready, CredentialsResolved, PolicyCompiled with the digest and the policies', () => {
    const status = agentConnectionStatus(orders, { maskingPolicies: [maskingPolicy('pii', 'EMP'), maskingPolicy('unrelated', 'x', { data: 'none' })], approvalRules: [approvalRule('ops', 'ls')], secretKeys: secrets }, T0);
    assert.deepEqual(status.conditions.map((c) => [c.type, c.status, c.reason]), [
      ['Ready', 'True', 'ConnectionReady'],
      ['CredentialsResolved', 'True', 'SecretResolved'],
      ['PolicyCompiled', 'True', 'BundleCompiled'],
    ]);
    assert.deepEqual(status.policies.maskingPolicies, ['pii']);
    assert.deepEqual(status.policies.approvalRules, ['ops']);
    assert.match(status.policies.bundleDigest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.ok(status.conditions[2]?.message.includes(status.policies.bundleDigest ?? 'none'));
    assert.equal(status.observedGeneration, 3);
  });

  test('CredentialsIsolated: reported only when checked; Unknown before the first answer, False naming who can read the Secret', () => {
    const inputs = { maskingPolicies: [], approvalRules: [], secretKeys: secrets };
    const isolated = (readers: { serviceAccount: string; verbs: string[] }[] | undefined) =>
      agentConnectionStatus(orders, { ...inputs, credentialReaders: { readers } }, T0).conditions.find((c) => c.type === 'CredentialsIsolated');
    assert.equal(agentConnectionStatus(orders, inputs, T0).conditions.find((c) => c.type === 'CredentialsIsolated'), undefined);
    assert.equal(isolated(undefined)?.status, 'Unknown');
    assert.equal(isolated([])?.reason, 'NoServiceAccountReads');
    const exposed = isolated([{ serviceAccount: 'agent', verbs: ['get'] }, { serviceAccount: 'ci', verbs: ['get', 'list', 'watch'] }]);
    assert.ok(exposed);
    assert.equal(exposed.status, 'False');
    assert.equal(exposed.reason, 'ServiceAccountsCanRead');
    assert.match(exposed.message, /ServiceAccounts "agent" \(get\), "ci" \(get, list, watch\) of namespace ".*" can read Secret "orders-db-credentials": a pod running as one of them could read the credentials itself and bypass the sidecar/);
    // a warning, not a reason to stop serving
    assert.equal(agentConnectionStatus(orders, { ...inputs, credentialReaders: { readers: [{ serviceAccount: 'agent', verbs: ['get'] }] } }, T0).conditions[0]?.status, 'True');
  });

  test('TrafficCaptured: reported only when pods are watched; False naming the pods in explicit capture, unless the connection declares what prevents direct traffic', () => {
    const inputs = { maskingPolicies: [], approvalRules: [], secretKeys: secrets };
    const captured = (connection: typeof orders, injectedPods: { name: string; capture?: string }[]) =>
      agentConnectionStatus(connection, { ...inputs, injectedPods }, T0).conditions.find((c) => c.type === 'TrafficCaptured');
    assert.equal(agentConnectionStatus(orders, inputs, T0).conditions.find((c) => c.type === 'TrafficCaptured'), undefined);
    assert.equal(captured(orders, [])?.reason, 'TransparentCapture');
    assert.equal(captured(orders, [{ name: 'a', capture: 'transparent' }])?.status, 'True');
    const bypass = captured(orders, [{ name: 'b', capture: 'explicit' }, { name: 'a', capture: 'transparent' }, { name: 'c' }]);
    assert.equal(bypass?.status, 'False');
    assert.equal(bypass.reason, 'Bypassable');
    assert.match(bypass.message, /^Pods b, c use explicit capture .*could connect to .* directly, bypassing the sidecar/);
    const declared = { ...orders, metadata: { ...orders.metadata, annotations: { 'airlock.dev/bypass-prevented-by': 'NetworkPolicy agents/egress-only-sidecar' } } };
    const ok = captured(declared, [{ name: 'b', capture: 'explicit' }]);
    assert.equal(ok?.status, 'True');
    assert.equal(ok.reason, 'DeclaredEnforcement');
    assert.match(ok.message, /NetworkPolicy agents\/egress-only-sidecar/);
    // a warning, not a reason to stop serving
    assert.equal(agentConnectionStatus(orders, { ...inputs, injectedPods: [{ name: 'b', capture: 'explicit' }] }, T0).conditions[0]?.status, 'True');
  });

  test('the digest changes when a selecting policy changes, not when an unrelated one does', () => {
    const digest = (policies: Parameters<typeof maskingPolicy>[]): string | undefined =>
      agentConnectionStatus(orders, { maskingPolicies: policies.map((p) => maskingPolicy(...p)), approvalRules: [], secretKeys: secrets }, T0).policies.bundleDigest;
    const base = digest([['pii', 'EMP']]);
    assert.notEqual(digest([['pii', 'EMP-[0-9]']]), base);
    assert.equal(digest([['pii', 'EMP'], ['unrelated', 'x', { data: 'none' }]]), base);
  });

  test('a selecting policy that does not compile: PolicyCompiled=False naming it, no digest, Ready=False', () => {
    const status = agentConnectionStatus(orders, { maskingPolicies: [maskingPolicy('pii', '(?<=x)y')], approvalRules: [], secretKeys: secrets }, T0);
    const compiled = status.conditions.find((c) => c.type === 'PolicyCompiled');
    assert.equal(compiled?.status, 'False');
    assert.equal(compiled.reason, 'InvalidPolicy');
    assert.match(compiled.message, /^MaskingPolicy "pii" does not compile: rule "employee-ids"/);
    assert.equal(status.policies.bundleDigest, undefined);
    assert.deepEqual([ready(status.conditions).status, ready(status.conditions).reason], ['False', 'PolicyNotCompiled']);
  });

  test('CredentialsResolved names the missing Secret, or the missing key', () => {
    const none = credentialsCondition(orders, new Map());
    assert.deepEqual([none.status, none.reason], ['False', 'SecretNotFound']);
    assert.equal(none.message, 'Secret "orders-db-credentials" named by spec.credentialsSecretRef does not exist in namespace "agents".');
    const noPassword = credentialsCondition(orders, new Map([['orders-db-credentials', ['username']]]));
    assert.deepEqual([noPassword.reason, noPassword.message], ['SecretKeyMissing', 'Secret "orders-db-credentials" named by spec.credentialsSecretRef has no key "password", which protocol postgres needs.']);
  });

  test('ssh takes a privateKey or a password; verify-full needs the CA Secret and key', () => {
    const ssh = connection('bastion', {}, { protocol: 'ssh', target: { host: 'b', port: 22 }, ssh: { hostKeyFingerprints: ['SHA256:x'] } });
    assert.equal(credentialsCondition(ssh, new Map([['bastion-credentials', ['username', 'privateKey']]])).status, 'True');
    assert.match(credentialsCondition(ssh, new Map([['bastion-credentials', ['username']]])).message, /no key "privateKey" or "password", which protocol ssh needs/);
    const tls = connection('orders-db', {}, { target: { host: 'db', port: 5432, database: 'o', tls: { mode: 'verify-full', caSecretRef: { name: 'ca' } } } });
    const c = credentialsCondition(tls, new Map([['orders-db-credentials', ['username', 'password']], ['ca', ['tls.crt']]]));
    assert.equal(c.message, 'Secret "ca" named by spec.target.tls.caSecretRef has no key "ca.crt", which protocol postgres needs.');
  });

  test('fields other writers own are kept', () => {
    const withSessions = { ...orders, status: { sessions: { total: 4, active: 1, blocked: 0 }, pendingApprovals: 2 } };
    const status = agentConnectionStatus(withSessions, { maskingPolicies: [], approvalRules: [], secretKeys: secrets }, T0);
    assert.deepEqual(status.sessions, { total: 4, active: 1, blocked: 0 });
    assert.equal(status.pendingApprovals, 2);
  });
});

describe('conditions', () => {
  const previous: Condition[] = [{ type: 'Ready', status: 'False', lastTransitionTime: T0, reason: 'InvalidRule', message: 'm', observedGeneration: 1 }];

  test('lastTransitionTime is kept while the status holds, even when reason or message change', () => {
    const [same] = settleConditions(previous, [{ type: 'Ready', status: 'False', reason: 'InvalidRule', message: 'other rule' }], 2, T1);
    assert.deepEqual(same, { type: 'Ready', status: 'False', observedGeneration: 2, lastTransitionTime: T0, reason: 'InvalidRule', message: 'other rule' });
  });

  test('transitions are the conditions whose status changed or that are new', () => {
    const next = settleConditions(previous, [
      { type: 'Ready', status: 'True', reason: 'RulesCompiled', message: 'ok' },
      { type: 'PolicyCompiled', status: 'True', reason: 'BundleCompiled', message: 'ok' },
    ], 2, T1);
    assert.deepEqual(transitions(previous, next).map((c) => c.type), ['Ready', 'PolicyCompiled']);
    assert.deepEqual(transitions(next, next), []);
  });

  test('notable transitions: every change of Ready, others when they become or stop being False', () => {
    const c = (type: string, status: 'True' | 'False' | 'Unknown'): Condition => ({ type, status, lastTransitionTime: T0, reason: 'R', message: 'm' });
    const first = [c('Ready', 'True'), c('CredentialsResolved', 'True'), c('CredentialsIsolated', 'Unknown'), c('TrafficCaptured', 'False')];
    assert.deepEqual(notableTransitions(undefined, first).map((x) => `${x.type}=${x.status}`), ['Ready=True', 'TrafficCaptured=False']);
    const later = [c('Ready', 'True'), c('CredentialsResolved', 'False'), c('CredentialsIsolated', 'True'), c('TrafficCaptured', 'True')];
    assert.deepEqual(notableTransitions(first, later).map((x) => `${x.type}=${x.status}`), ['CredentialsResolved=False', 'TrafficCaptured=True']);
    assert.deepEqual(notableTransitions(later, [c('Ready', 'False'), ...later.slice(1)]).map((x) => `${x.type}=${x.status}`), ['Ready=False']);
    assert.deepEqual(notableTransitions(later, later), []);
  });
});
