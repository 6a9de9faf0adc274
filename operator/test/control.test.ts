/** The control API's pure parts with plain values: grants, pod authorization, bundle assembly and its revision. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AgentConnection, Manifest, PodIdentity } from '@airlock/api';
import { compileBundle } from '@airlock/policy';
import { judgeConnectionPolicies } from '../src/compile.ts';
import { authorizePod, type PodRecord, type TokenClaims } from '../src/control/auth.ts';
import { assembleBundle, memoizedJudge, type NamespaceContents, type SecretLike } from '../src/control/bundle.ts';
import { ControlFailure } from '../src/control/errors.ts';
import { grantedConnections, grants } from '../src/control/grant.ts';
import { slimPod } from '../src/control/pod-cache.ts';
import { agentConnectionStatus } from '../src/status/connection.ts';
import { approvalRule, connection, maskingPolicy } from './fixtures.ts';

const planner: PodRecord = { namespace: 'agents', name: 'agent-1', uid: 'uid-1', serviceAccount: 'planner', labels: { app: 'agent' } };
const identity: PodIdentity = { namespace: 'agents', name: 'agent-1', uid: 'uid-1', serviceAccount: 'planner' };
const claims: TokenClaims = { namespace: 'agents', serviceAccount: 'planner', pod: { name: 'agent-1', uid: 'uid-1' } };

function agents(spec: AgentConnection['spec']['agents'], name = 'db'): AgentConnection {
  return connection(name, { data: 'pii' }, { agents: spec });
}

function secret(name: string, data: Record<string, string>): SecretLike {
  return {
    metadata: { name, namespace: 'agents', uid: `uid-${name}` },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

function contents(over: Partial<NamespaceContents> & { secrets?: SecretLike[] } = {}): NamespaceContents {
  const secrets = over.secrets ?? [secret('db-credentials', { username: 'planner', password: 'change-me' })];
  return {
    connections: over.connections ?? [agents({ serviceAccounts: ['planner'] })],
    maskingPolicies: over.maskingPolicies ?? [maskingPolicy('pii', 'EMP-[0-9]{6}')],
    approvalRules: over.approvalRules ?? [],
    secret: (name) => secrets.find((s) => s.metadata?.name === name),
  };
}

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ControlFailure) return `${err.status} ${err.code}`;
    throw err;
  }
  return 'no failure';
}

describe('grants (spec.agents)', () => {
  test('podSelector and serviceAccounts must both hold when both are set', () => {
    const both = agents({ podSelector: { matchLabels: { app: 'agent' } }, serviceAccounts: ['planner'] });
    assert.equal(grants(both, planner), true);
    assert.equal(grants(both, { ...planner, labels: { app: 'other' } }), false);
    assert.equal(grants(both, { ...planner, serviceAccount: 'ops' }), false);
  });

  test('only serviceAccounts: any labels; only podSelector: any service account; {} selects every pod', () => {
    assert.equal(grants(agents({ serviceAccounts: ['planner'] }), { ...planner, labels: {} }), true);
    assert.equal(grants(agents({ podSelector: { matchLabels: { app: 'agent' } } }), { ...planner, serviceAccount: 'anyone' }), true);
    assert.equal(grants(agents({ podSelector: {} }), { ...planner, labels: {} }), true);
  });

  test('neither set, another namespace, a connection being deleted: nobody', () => {
    assert.equal(grants(agents({}), planner), false);
    assert.equal(grants(agents({ serviceAccounts: ['planner'] }), { ...planner, namespace: 'elsewhere' }), false);
    const deleting = agents({ serviceAccounts: ['planner'] });
    assert.equal(grants({ ...deleting, metadata: { ...deleting.metadata, deletionTimestamp: '2026-12-04T00:00:00Z' } }, planner), false);
  });

  test('matchExpressions: NotIn and DoesNotExist', () => {
    const expr = agents({ podSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['prod'] }, { key: 'blocked', operator: 'DoesNotExist' }] } });
    assert.equal(grants(expr, planner), true);
    assert.equal(grants(expr, { ...planner, labels: { tier: 'prod' } }), false);
    assert.equal(grants(expr, { ...planner, labels: { blocked: '' } }), false);
  });

  test('granted connections come sorted by name', () => {
    const list = [agents({ serviceAccounts: ['planner'] }, 'zeta'), agents({ serviceAccounts: ['ops'] }, 'mid'), agents({ serviceAccounts: ['planner'] }, 'alpha')];
    assert.deepEqual(grantedConnections(list, planner).map((c) => c.metadata.name), ['alpha', 'zeta']);
  });
});

describe('authorizePod: the token names a live (injected) pod that a connection grants', () => {
  const granting = [agents({ serviceAccounts: ['planner'] })];

  test('the identity and the granting connections', () => {
    const { identity: who, granted } = authorizePod(claims, planner, granting);
    assert.deepEqual(who, identity);
    assert.deepEqual(granted.map((c) => c.metadata.name), ['db']);
  });

  test('each refusal has its code and status', () => {
    assert.equal(failure(() => authorizePod({ ...claims, pod: undefined }, planner, granting)), '403 NotPodBound');
    assert.equal(failure(() => authorizePod(claims, undefined, granting)), '403 PodNotFound');
    assert.equal(failure(() => authorizePod(claims, { ...planner, uid: 'uid-2' }, granting)), '403 PodUidMismatch');
    assert.equal(failure(() => authorizePod(claims, { ...planner, serviceAccount: 'ops' }, granting)), '403 ServiceAccountMismatch');
    assert.equal(failure(() => authorizePod(claims, planner, [agents({ serviceAccounts: ['ops'] })])), '403 NotGranted');
    assert.equal(failure(() => authorizePod(claims, planner, [])), '403 NotGranted');
  });
});

describe('slimPod: what the pod cache keeps', () => {
  test('an injected pod: its identity and labels; a pod without the annotation: nothing', () => {
    const pod = {
      metadata: { name: 'agent-1', namespace: 'agents', uid: 'uid-1', resourceVersion: '7', labels: { app: 'agent' }, annotations: { 'airlock.dev/injected': 'x', big: 'y'.repeat(1000) } },
      spec: { serviceAccountName: 'planner' },
    };
    const slim = slimPod(pod);
    assert.deepEqual(slim?.record, planner);
    assert.equal(slim.metadata.resourceVersion, '7');
    assert.ok(JSON.stringify(slim).length < 400);
    assert.equal(slimPod({ ...pod, metadata: { ...pod.metadata, annotations: {} } }), undefined);
    assert.equal(slimPod({ metadata: { name: 'p', annotations: { 'airlock.dev/injected': '' } }, spec: {} })?.record.serviceAccount, 'default');
  });

  test('the capture mode and connections of the injected annotation are kept; an unreadable one gives neither', () => {
    const meta = { name: 'agent-2', namespace: 'agents', uid: 'uid-2' };
    const record = (annotation: string) => slimPod({ metadata: { ...meta, annotations: { 'airlock.dev/injected': annotation } }, spec: {} })?.record;
    const r = record(JSON.stringify({ image: 'airlock.dev/airlock:0.1.0', capture: 'explicit', connections: ['orders-db', 7, 'bastion'] }));
    assert.equal(r?.capture, 'explicit');
    assert.deepEqual(r.connections, ['orders-db', 'bastion']);
    const broken = record('{not json');
    assert.equal(broken?.capture, undefined);
    assert.equal(broken?.connections, undefined);
  });
});

describe('assembleBundle', () => {
  test('each granted connection with its selecting policies and its Secret, trimmed', () => {
    const { bundle, omitted } = assembleBundle(identity, contents({ approvalRules: [approvalRule('guard', 'rm *', { data: 'pii' }), approvalRule('elsewhere', 'rm *', { env: 'prod' })] }));
    assert.deepEqual(omitted, []);
    assert.equal('refused' in bundle, false, 'nothing refused: no field (the revision of a healthy bundle does not change)');
    assert.equal(bundle.kind, 'SidecarBundle');
    assert.deepEqual(bundle.pod, identity);
    const [only] = bundle.connections;
    assert.ok(only);
    assert.deepEqual(only.objects.map((o) => `${String(o['kind'])}/${(o['metadata'] as { name: string }).name}`), ['AgentConnection/db', 'MaskingPolicy/pii', 'ApprovalRule/guard', 'Secret/db-credentials']);
    const secretObject = only.objects[3] as { apiVersion: string; data: Record<string, string>; metadata: Record<string, unknown> };
    assert.equal(secretObject.apiVersion, 'v1');
    assert.equal(Buffer.from(secretObject.data['password'] ?? '', 'base64').toString(), 'change-me');
    assert.deepEqual(Object.keys(secretObject.metadata).sort(), ['name', 'namespace', 'uid']);
    assert.equal((only.objects[0] as { status?: unknown }).status, undefined);
  });

  test('the digest is the PolicyCompiled digest of the connection status, and the one the sidecar computes from the objects', () => {
    const input = contents();
    const { bundle } = assembleBundle(identity, input);
    const conn = input.connections[0] as AgentConnection;
    const status = agentConnectionStatus(conn, { maskingPolicies: input.maskingPolicies, approvalRules: [], secretKeys: new Map([['db-credentials', ['username', 'password']]]) }, '2026-12-04T00:00:00Z');
    const [only] = bundle.connections;
    assert.ok(only);
    assert.equal(only.digest, status.policies.bundleDigest);
    const manifests: Manifest[] = only.objects.map((o, i) => ({
      source: 'control-api',
      document: i,
      apiVersion: String(o['apiVersion']),
      kind: String(o['kind']),
      name: (o['metadata'] as { name: string }).name,
      namespace: 'agents',
      object: JSON.parse(JSON.stringify(o)) as Record<string, unknown>,
    }));
    // the sidecar derives its hash key from the Secret: the digest does not depend on it
    assert.equal(compileBundle(manifests, { connection: 'db', namespace: 'agents', serviceAccount: 'planner' }).digest, only.digest);
  });

  test('a missing Secret or key, or a policy that does not compile: the connection is left out, with the reason', () => {
    const noSecret = assembleBundle(identity, contents({ secrets: [] }));
    assert.deepEqual(noSecret.bundle.connections, []);
    assert.equal(noSecret.omitted[0]?.reason, 'CredentialsNotResolved');
    assert.match(noSecret.omitted.at(0)?.message ?? '', /Secret "db-credentials" named by spec.credentialsSecretRef does not exist/);
    // the sidecar learns of it, to tell the agent why (not a closed port)
    assert.deepEqual(noSecret.bundle.refused, noSecret.omitted);
    assert.equal(noSecret.bundle.refused.at(0)?.protocol, 'postgres');
    assert.equal(noSecret.bundle.refused.at(0)?.listenPort, 15432);
    const noKey = assembleBundle(identity, contents({ secrets: [secret('db-credentials', { username: 'planner' })] }));
    assert.match(noKey.omitted.at(0)?.message ?? '', /has no key "password"/);
    const broken = assembleBundle(identity, contents({ maskingPolicies: [maskingPolicy('pii', '(?<=x)y')] }));
    assert.deepEqual(broken.bundle.connections, []);
    assert.equal(broken.omitted[0]?.reason, 'PolicyNotCompiled');
    assert.equal(broken.bundle.refused?.at(0)?.reason, 'PolicyNotCompiled');
    assert.notEqual(broken.bundle.revision, noSecret.bundle.revision, 'the reason is part of the revision');
    assert.match(broken.omitted.at(0)?.message ?? '', /^MaskingPolicy "pii" does not compile: rule "employee-ids"/);
  });

  test('verify-full: the CA Secret travels too, once', () => {
    const tls = connection('db', { data: 'pii' }, { agents: { serviceAccounts: ['planner'] }, target: { host: 'db', port: 5432, database: 'orders', tls: { mode: 'verify-full', caSecretRef: { name: 'db-credentials', key: 'ca.crt' } } } });
    const { bundle, omitted } = assembleBundle(identity, contents({ connections: [tls], secrets: [secret('db-credentials', { username: 'u', password: 'p', 'ca.crt': 'PEM' })] }));
    assert.deepEqual(omitted, []);
    assert.equal(bundle.connections[0]?.objects.filter((o) => o['kind'] === 'Secret').length, 1);
  });

  test('the revision is stable: the same inputs, in any order of keys, give the same revision', () => {
    const a = assembleBundle(identity, contents()).bundle.revision;
    const reordered = contents();
    const conn = reordered.connections[0] as AgentConnection;
    const shuffled = { ...reordered, connections: [{ spec: conn.spec, metadata: { ...conn.metadata }, kind: conn.kind, apiVersion: conn.apiVersion } as AgentConnection] };
    assert.equal(assembleBundle(identity, shuffled).bundle.revision, a);
    assert.match(a, /^sha256:[0-9a-f]{64}$/);
  });

  test('status, resourceVersion and annotations do not move the revision; labels, specs and Secret data do', () => {
    const base = contents();
    const rev = assembleBundle(identity, base).bundle.revision;
    const conn = base.connections[0] as AgentConnection;
    const withStatus: AgentConnection = { ...conn, metadata: { ...conn.metadata, resourceVersion: '99', annotations: { note: 'x' } }, status: { pendingApprovals: 3 } };
    assert.equal(assembleBundle(identity, { ...base, connections: [withStatus] }).bundle.revision, rev);
    const relabelled: AgentConnection = { ...conn, metadata: { ...conn.metadata, labels: { data: 'pii', team: 'b' } } };
    assert.notEqual(assembleBundle(identity, { ...base, connections: [relabelled] }).bundle.revision, rev);
    assert.notEqual(assembleBundle(identity, contents({ secrets: [secret('db-credentials', { username: 'planner', password: 'rotated' })] })).bundle.revision, rev);
    assert.notEqual(assembleBundle(identity, contents({ maskingPolicies: [maskingPolicy('pii', 'EMP-[0-9]{7}')] })).bundle.revision, rev);
    assert.notEqual(assembleBundle({ ...identity, uid: 'uid-9' }, base).bundle.revision, rev);
  });

  test('property: the revision is a function of the content only', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 5 }), (data) => {
        const one = assembleBundle(identity, contents({ secrets: [secret('db-credentials', { username: 'u', password: 'p', ...data })] }));
        const reversed = Object.fromEntries(Object.entries({ username: 'u', password: 'p', ...data }).reverse());
        const two = assembleBundle(identity, contents({ secrets: [secret('db-credentials', reversed)] }));
        return one.bundle.revision === two.bundle.revision;
      }),
    );
  });

  test('memoizedJudge answers a repeated input from memory and stays bounded', () => {
    let calls = 0;
    const judge = memoizedJudge(2, (c, m, r) => {
      calls++;
      return judgeConnectionPolicies(c, m, r);
    });
    const conn = agents({ serviceAccounts: ['planner'] });
    const first = judge(conn, [maskingPolicy('pii', 'EMP-[0-9]{6}')], []);
    assert.deepEqual(judge(conn, [maskingPolicy('pii', 'EMP-[0-9]{6}')], []), first);
    assert.equal(calls, 1);
    judge(conn, [maskingPolicy('pii', 'A')], []);
    judge(conn, [maskingPolicy('pii', 'B')], []);
    judge(conn, [maskingPolicy('pii', 'EMP-[0-9]{6}')], []);
    assert.equal(calls, 4, 'the oldest entry was dropped');
  });
});
