import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentConnection, ApprovalRule, MaskingPolicy } from '@airlock/api';
import { canonicalJson } from '../src/canonical.ts';
import { keysForConnection, keysForPolicy, keysForSecret } from '../src/dependents.ts';
import { transitionEvent } from '../src/events.ts';
import { formatKey, parseKey } from '../src/keys.ts';
import { planReconcile } from '../src/plan.ts';
import { parseAddress } from '../src/address.ts';
import type { ClusterView } from '../src/view.ts';
import { approvalRule, connection, maskingPolicy } from './fixtures.ts';

function view(objects: { connections?: AgentConnection[]; maskingPolicies?: MaskingPolicy[]; approvalRules?: ApprovalRule[]; secrets?: Record<string, string[]> }): ClusterView {
  const connections = objects.connections ?? [];
  const maskingPolicies = objects.maskingPolicies ?? [];
  const approvalRules = objects.approvalRules ?? [];
  const named = <T extends { metadata: { name?: string; namespace?: string } }>(list: T[], namespace: string, name: string): T | undefined =>
    list.find((o) => o.metadata.name === name && o.metadata.namespace === namespace);
  const inNamespace = <T extends { metadata: { namespace?: string } }>(list: T[], namespace: string): T[] => list.filter((o) => o.metadata.namespace === namespace);
  return {
    connection: (ns, name) => named(connections, ns, name),
    maskingPolicy: (ns, name) => named(maskingPolicies, ns, name),
    approvalRule: (ns, name) => named(approvalRules, ns, name),
    connections: (ns) => inNamespace(connections, ns),
    maskingPolicies: (ns) => inNamespace(maskingPolicies, ns),
    approvalRules: (ns) => inNamespace(approvalRules, ns),
    secretKeys: (ns) => new Map(ns === 'agents' ? Object.entries(objects.secrets ?? {}) : []),
  };
}

const NOW = '2026-12-04T10:00:00Z';

describe('planReconcile', () => {
  const orders = connection('orders-db', { data: 'pii' });

  test('an object gone from the cache: nothing to do', () => {
    assert.deepEqual(planReconcile(parseKey('AgentConnection/agents/orders-db'), view({}), NOW), { action: 'none', why: 'deleted' });
  });

  test('a new object: write its status; Events for Ready and for what is False, not for details that start True', () => {
    const plan = planReconcile(parseKey('AgentConnection/agents/orders-db'), view({ connections: [orders] }), NOW);
    assert.equal(plan.action, 'write');
    assert.equal(plan.plural, 'agentconnections');
    assert.deepEqual(plan.transitions.map((c) => `${c.type}=${c.status}`), ['Ready=False', 'CredentialsResolved=False']);
    // the Secret arrives: Ready and CredentialsResolved leave False, each an Event
    const stored = { ...orders, status: plan.status as AgentConnection['status'] };
    const next = planReconcile(parseKey('AgentConnection/agents/orders-db'), view({ connections: [stored], secrets: { 'orders-db-credentials': ['username', 'password'] } }), NOW);
    assert.equal(next.action, 'write');
    assert.deepEqual(next.transitions.map((c) => `${c.type}=${c.status}`), ['Ready=True', 'CredentialsResolved=True']);
  });

  test('a status already up to date (whatever the key order the server returned): nothing to write', () => {
    const first = planReconcile(parseKey('MaskingPolicy/agents/pii'), view({ connections: [orders], maskingPolicies: [maskingPolicy('pii', 'EMP')] }), NOW);
    assert.equal(first.action, 'write');
    // the server's JSON, keys in another order
    const reversed = (value: unknown): unknown =>
      Array.isArray(value) ? value.map(reversed) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)])) : value;
    const written = reversed(first.status) as MaskingPolicy['status'];
    assert.notEqual(JSON.stringify(written), JSON.stringify(first.status));
    const stored = { ...maskingPolicy('pii', 'EMP'), status: written };
    assert.deepEqual(planReconcile(parseKey('MaskingPolicy/agents/pii'), view({ connections: [orders], maskingPolicies: [stored] }), '2026-12-04T11:00:00Z'), { action: 'none', why: 'unchanged' });
  });

  test('a change that keeps every condition status: a write without transitions', () => {
    const first = planReconcile(parseKey('ApprovalRule/agents/ops'), view({ approvalRules: [approvalRule('ops', 'ls')] }), NOW);
    assert.equal(first.action, 'write');
    const stored = { ...approvalRule('ops', 'ls'), status: first.status as ApprovalRule['status'] };
    const plan = planReconcile(parseKey('ApprovalRule/agents/ops'), view({ approvalRules: [stored], connections: [connection('bastion', { env: 'prod' })] }), NOW);
    assert.equal(plan.action, 'write');
    assert.deepEqual(plan.transitions, []);
    assert.deepEqual((plan.status as { connections: string[] }).connections, ['bastion']);
  });
});

describe('which keys an event enqueues', () => {
  const pii = connection('orders-db', { data: 'pii' });
  const plain = connection('plain', { data: 'none' });
  const formerlySelected = { ...plain, status: { policies: { maskingPolicies: ['pii'], approvalRules: [] } } };

  test('a policy: itself, the connections it selects, and those whose status says it did', () => {
    assert.deepEqual(keysForPolicy('MaskingPolicy', maskingPolicy('pii', 'x'), view({ connections: [pii, formerlySelected] })), [
      'MaskingPolicy/agents/pii',
      'AgentConnection/agents/orders-db',
      'AgentConnection/agents/plain',
    ]);
    assert.deepEqual(keysForPolicy('MaskingPolicy', maskingPolicy('pii', 'x'), view({ connections: [plain] })), ['MaskingPolicy/agents/pii']);
  });

  test('a connection: itself and the policies that select it or recorded it', () => {
    const recorded = { ...approvalRule('old', 'ls', { env: 'dev' }), status: { connections: ['orders-db'] } };
    const keys = keysForConnection(pii, view({ maskingPolicies: [maskingPolicy('pii', 'x'), maskingPolicy('other', 'x', { data: 'none' })], approvalRules: [recorded, approvalRule('unrelated', 'ls')] }));
    assert.deepEqual(keys, ['AgentConnection/agents/orders-db', 'MaskingPolicy/agents/pii', 'ApprovalRule/agents/old']);
  });

  test('a Secret: the connections of its namespace that name it, as credentials or CA', () => {
    const tls = connection('tls', {}, { target: { host: 'db', port: 5432, database: 'o', tls: { mode: 'verify-full', caSecretRef: { name: 'orders-db-credentials' } } } });
    const v = view({ connections: [pii, plain, tls] });
    assert.deepEqual(keysForSecret({ metadata: { name: 'orders-db-credentials', namespace: 'agents' } }, v), ['AgentConnection/agents/orders-db', 'AgentConnection/agents/tls']);
    assert.deepEqual(keysForSecret({ metadata: { name: 'orders-db-credentials', namespace: 'elsewhere' } }, v), []);
  });
});

describe('small pure pieces', () => {
  test('keys round-trip and malformed ones are refused with a stable code', () => {
    assert.equal(formatKey(parseKey('MaskingPolicy/agents/pii')), 'MaskingPolicy/agents/pii');
    assert.throws(() => parseKey('Pod/agents/x'), { code: 'InvalidKey' });
    assert.throws(() => parseKey('MaskingPolicy/agents'), { code: 'InvalidKey' });
    assert.throws(() => parseKey('MaskingPolicy/agents/a/b'), { code: 'InvalidKey' });
  });

  test('canonical JSON ignores key order, not array order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });

  test('an Event for a transition: reason, note, reportingController, regarding', () => {
    const event = transitionEvent(maskingPolicy('pii', 'x'), { type: 'Ready', status: 'False', reason: 'InvalidRule', message: 'Rule "a" is bad.', lastTransitionTime: NOW }, Date.parse(NOW), 'host-1');
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, 'InvalidRule');
    assert.equal(event.note, 'Ready is False: Rule "a" is bad.');
    assert.equal(event.reportingController, 'airlock.dev/operator');
    assert.equal(event.reportingInstance, 'host-1');
    const regarding = event.regarding;
    assert.deepEqual([regarding?.apiVersion, regarding?.kind, regarding?.name, regarding?.namespace, regarding?.uid], ['airlock.dev/v1alpha1', 'MaskingPolicy', 'pii', 'agents', undefined]);
    assert.match(event.metadata?.name ?? '', /^pii\.[0-9a-f]+$/);
    // events.k8s.io wants microseconds
    assert.equal(JSON.stringify(event.eventTime), '"2026-12-04T10:00:00.000000Z"');
  });

  test('--metrics-addr is host:port', () => {
    assert.deepEqual(parseAddress('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseAddress('[::1]:0'), { host: '::1', port: 0 });
    assert.throws(() => parseAddress('8080'), { code: 'InvalidAddress' });
    assert.throws(() => parseAddress('localhost:http'), { code: 'InvalidAddress' });
  });
});
