/**
 * `airlock operator` as a child process against a real kube-apiserver + etcd: conditions,
 * status, Events, no needless writes, probes and metrics, graceful stop.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { until as untilHolds } from '../src/wait.ts';

const NS = 'op-e2e';
const RESYNC_SECONDS = 2;

let cp: ControlPlane;
let operator: RunningOperator;
const started: RunningOperator[] = [];

interface RunningOperator {
  readonly child: ChildProcess;
  /** its stderr so far (JSON lines) */
  logs(): string;
  /** http://host:port of its probes, once it logged it */
  base(): Promise<string>;
}

function startOperator(extra: readonly string[] = []): RunningOperator {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'cli', 'src', 'main.ts'), 'operator', '--kubeconfig', cp.kubeconfig, '--metrics-addr', '127.0.0.1:0', '--resync-period', `${RESYNC_SECONDS}s`, '--control-addr', 'off', '--manage-certificates=false', '--access-check-period', '1s', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let text = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    text += chunk;
  });
  const running: RunningOperator = {
    child,
    logs: () => text,
    base: async () => `http://${(await until('the operator to serve its probes', () => Promise.resolve(/"address":"([0-9.]+:[0-9]+)"/.exec(text)?.[1]), (a) => a !== undefined)) ?? ''}`,
  };
  started.push(running);
  return running;
}

async function stopOperator(running: RunningOperator): Promise<number | null> {
  running.child.kill('SIGTERM');
  const [code] = (await once(running.child, 'exit')) as [number | null];
  return code;
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

interface Status {
  observedGeneration?: number;
  conditions?: Condition[];
  connections?: string[];
  policies?: { maskingPolicies?: string[]; approvalRules?: string[]; bundleDigest?: string };
}

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

async function object(resource: string, name: string): Promise<{ metadata: { resourceVersion: string; generation: number }; status?: Status }> {
  return JSON.parse(await ok(['get', resource, name, '-n', NS, '-o', 'json'])) as { metadata: { resourceVersion: string; generation: number }; status?: Status };
}

async function statusOf(resource: string, name: string): Promise<Status> {
  return (await object(resource, name)).status ?? {};
}

/** the condition of that type; fails the test when there is none */
function condition(status: Status, type: string): Condition {
  const found = status.conditions?.find((c) => c.type === type);
  assert.ok(found, `no ${type} condition in ${JSON.stringify(status)}`);
  return found;
}

/** whether the condition of that type has that status (or reason) */
function is(status: Status, type: string, value: string): boolean {
  const found = status.conditions?.find((c) => c.type === type);
  return found?.status === value || found?.reason === value;
}

/** polls `read` until `accept` holds, up to 30 s; fails with the last value and the operator's log */
const until = <T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean): Promise<T> => untilHolds(what, read, accept, { timeoutMs: 30_000, context: () => `operator logs:\n${started.map((o) => o.logs().slice(-3000)).join('\n---\n')}` });

async function get(path: string, from: RunningOperator = operator): Promise<{ status: number; body: string }> {
  const res = await fetch(`${await from.base()}${path}`);
  return { status: res.status, body: await res.text() };
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

const maskingPolicy = (name: string, pattern: string, extra = ''): string => `apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: ${name}, namespace: ${NS} }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - name: employee-ids
      match: { pattern: ${JSON.stringify(pattern)} }
      action: { type: redact }${extra}
`;

const connection = `apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: orders-db, namespace: ${NS}, labels: { data: pii } }
spec:
  protocol: postgres
  target: { host: orders-db.example, port: 5432, database: orders }
  credentialsSecretRef: { name: orders-db-credentials }
  agents: { serviceAccounts: [planner] }
`;

const secret = `apiVersion: v1
kind: Secret
metadata: { name: orders-db-credentials, namespace: ${NS} }
stringData: { username: planner, password: change-me }
`;

before(() => {
  cp = startControlPlane();
  // started before the CRDs exist: its informers fail, restart with backoff, and sync once they do
  operator = startOperator();
});

after(async () => {
  for (const running of started) {
    if (running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await once(running.child, 'exit');
    }
  }
  cp.stop();
});

describe('airlock operator against a real API server', () => {
  test('/readyz is false until every informer has synced; informers restart after errors', async () => {
    const early = await get('/readyz');
    assert.equal(early.status, 503);
    assert.match(early.body, /not ready: .*informer AgentConnection/);
    assert.equal((await get('/healthz')).status, 200);

    await ok(['apply', '-f', join(ROOT, 'crds')]);
    await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
    await ok(['create', 'namespace', NS]);
    await until('/readyz to answer 200', () => get('/readyz'), (r) => r.status === 200);
    const metrics = (await get('/metrics')).body;
    assert.ok(metric(metrics, 'airlock_operator_informer_restarts_total', 'informer="AgentConnection"') >= 1, metrics);
    assert.match(metrics, /^airlock_operator_workqueue_depth \d+$/m);
  });

  test('a MaskingPolicy whose rules compile is Ready', async () => {
    await ok(['apply', '-f', '-'], maskingPolicy('pii', 'EMP-[0-9]{6}'));
    const status = await until('pii Ready=True', () => statusOf('mpol', 'pii'), (s) => is(s, 'Ready', 'True'));
    const ready = condition(status, 'Ready');
    assert.equal(ready.reason, 'RulesCompiled');
    assert.equal(ready.observedGeneration, 1);
    assert.equal(status.observedGeneration, 1);
    assert.match(await ok(['get', 'mpol', 'pii', '-n', NS]), /^NAME\s+READY\s+AGE\npii\s+True\s/);
  });

  test('a bad RE2 pattern makes it Ready=False naming the rule; fixing it flips Ready back with a new lastTransitionTime', async () => {
    await ok(['apply', '-f', '-'], maskingPolicy('pii', '(?<=x)y'));
    const broken = await until('pii Ready=False', () => statusOf('mpol', 'pii'), (s) => is(s, 'Ready', 'False'));
    const failed = condition(broken, 'Ready');
    assert.equal(failed.reason, 'InvalidRule');
    assert.match(failed.message, /rule "employee-ids"/);
    assert.equal(failed.observedGeneration, 2);
    // lastTransitionTime has a resolution of one second
    await sleep(1100);
    await ok(['apply', '-f', '-'], maskingPolicy('pii', 'EMP-[0-9]{6}'));
    const fixed = await until('pii Ready=True again', () => statusOf('mpol', 'pii'), (s) => is(s, 'Ready', 'True'));
    assert.ok(condition(fixed, 'Ready').lastTransitionTime > failed.lastTransitionTime, JSON.stringify(fixed));
  });

  test('an ApprovalRule with a malformed glob is Ready=False naming the rule', async () => {
    const rule = (command: string): string => `apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: guardrails, namespace: ${NS} }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - name: no-rm
      match: { ssh: { commands: [${JSON.stringify(command)}] } }
      action: Block
`;
    await ok(['apply', '-f', '-'], rule('rm \\'));
    const broken = await until('guardrails Ready=False', () => statusOf('arule', 'guardrails'), (s) => is(s, 'Ready', 'False'));
    assert.equal(condition(broken, 'Ready').reason, 'InvalidRule');
    assert.match(condition(broken, 'Ready').message, /rule "guardrails\/no-rm"/);
    await ok(['apply', '-f', '-'], rule('rm -rf *'));
    await until('guardrails Ready=True', () => statusOf('arule', 'guardrails'), (s) => is(s, 'Ready', 'True'));
  });

  test('an AgentConnection whose Secret is missing is not Ready; creating the Secret resolves it', async () => {
    await ok(['apply', '-f', '-'], connection);
    const missing = await until(
      'CredentialsResolved=False',
      () => statusOf('aconn', 'orders-db'),
      (s) => is(s, 'CredentialsResolved', 'False'),
    );
    assert.equal(condition(missing, 'CredentialsResolved').reason, 'SecretNotFound');
    assert.match(condition(missing, 'CredentialsResolved').message, /Secret "orders-db-credentials" named by spec\.credentialsSecretRef does not exist/);
    assert.equal(condition(missing, 'Ready').status, 'False');
    assert.equal(condition(missing, 'Ready').reason, 'CredentialsNotResolved');
    assert.equal(condition(missing, 'PolicyCompiled').status, 'True');
    assert.deepEqual(missing.policies?.maskingPolicies, ['pii']);
    assert.deepEqual(missing.policies.approvalRules, ['guardrails']);
    assert.match(missing.policies.bundleDigest ?? '', /^sha256:[0-9a-f]{64}$/);

    await ok(['apply', '-f', '-'], secret);
    const resolved = await until('Ready=True', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'Ready', 'True'));
    assert.equal(condition(resolved, 'CredentialsResolved').reason, 'SecretResolved');
    const table = await ok(['get', 'agentconnections', '-n', NS]);
    assert.match(table, /^NAME\s+PROTOCOL\s+TARGET\s+READY\s+SESSIONS\s+AGE\norders-db\s+postgres\s+orders-db\.example\s+True\s/);
    // the policies record what they select
    assert.deepEqual((await object('mpol', 'pii')).status?.connections, ['orders-db']);
  });

  test('a Secret without the keys the protocol needs is named in the condition', async () => {
    await ok(['patch', 'secret', 'orders-db-credentials', '-n', NS, '--type', 'json', '-p', '[{"op":"remove","path":"/data/password"}]']);
    const status = await until('SecretKeyMissing', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'CredentialsResolved', 'SecretKeyMissing'));
    assert.match(condition(status, 'CredentialsResolved').message, /has no key "password", which protocol postgres needs/);
    await ok(['apply', '-f', '-'], secret);
    await until('Ready=True', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'Ready', 'True'));
  });

  test('CredentialsIsolated names a ServiceAccount that can read the credentials Secret itself (SubjectAccessReview)', async () => {
    const isolated = await until('CredentialsIsolated=True', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'CredentialsIsolated', 'True'));
    assert.equal(condition(isolated, 'CredentialsIsolated').reason, 'NoServiceAccountReads');
    await ok(['create', 'serviceaccount', 'snoop', '-n', NS]);
    await ok(['create', 'role', 'read-orders-creds', '-n', NS, '--verb=get', '--resource=secrets', '--resource-name=orders-db-credentials']);
    await ok(['create', 'rolebinding', 'snoop-reads', '-n', NS, '--role=read-orders-creds', `--serviceaccount=${NS}:snoop`]);
    const exposed = await until('CredentialsIsolated=False', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'CredentialsIsolated', 'False'));
    const c = condition(exposed, 'CredentialsIsolated');
    assert.equal(c.reason, 'ServiceAccountsCanRead');
    assert.match(c.message, /ServiceAccount "snoop" \(get\) of namespace "op-e2e" can read Secret "orders-db-credentials": a pod running as it could read the credentials itself and bypass the sidecar/);
    // the connection still works: this is a warning about RBAC, not a reason to stop serving
    assert.equal(condition(exposed, 'Ready').status, 'True');
    await ok(['delete', 'rolebinding', 'snoop-reads', '-n', NS]);
    await until('CredentialsIsolated=True again', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'CredentialsIsolated', 'True'));
  });

  test('PolicyCompiled carries the bundle digest, which changes when a selecting policy changes', async () => {
    const before = (await object('aconn', 'orders-db')).status?.policies?.bundleDigest ?? '';
    assert.match(before, /^sha256:/);
    assert.match(condition(await statusOf('aconn', 'orders-db'), 'PolicyCompiled').message, new RegExp(before));
    await ok(['apply', '-f', '-'], maskingPolicy('pii', 'EMP-[0-9]{7}'));
    const after = await until('a new digest', () => statusOf('aconn', 'orders-db'), (s) => (s.policies?.bundleDigest ?? before) !== before);
    assert.match(condition(after, 'PolicyCompiled').message, new RegExp(after.policies?.bundleDigest ?? 'none'));

    // a selecting policy that does not compile makes the connection not Ready, naming the policy
    await ok(['apply', '-f', '-'], maskingPolicy('pii', '(?<=x)y'));
    const broken = await until('PolicyCompiled=False', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'PolicyCompiled', 'False'));
    assert.equal(condition(broken, 'PolicyCompiled').reason, 'InvalidPolicy');
    assert.match(condition(broken, 'PolicyCompiled').message, /MaskingPolicy "pii" does not compile: rule "employee-ids"/);
    assert.equal(broken.policies?.bundleDigest, undefined);
    assert.equal(condition(broken, 'Ready').reason, 'PolicyNotCompiled');
    await ok(['apply', '-f', '-'], maskingPolicy('pii', 'EMP-[0-9]{7}'));
    const again = await until('Ready=True', () => statusOf('aconn', 'orders-db'), (s) => is(s, 'Ready', 'True'));
    assert.equal(again.policies?.bundleDigest, after.policies?.bundleDigest);
  });

  test('every condition transition has an Event from airlock.dev/operator', async () => {
    interface Event {
      reason: string;
      type: string;
      note: string;
      reportingController: string;
      regarding: { kind: string; name: string };
    }
    const events = await until(
      'the Events',
      async () => (JSON.parse(await ok(['get', 'events.events.k8s.io', '-n', NS, '-o', 'json'])) as { items: Event[] }).items,
      (items) => items.some((e) => e.reason === 'SecretResolved'),
    );
    const of = (kind: string, name: string): string[] => events.filter((e) => e.regarding.kind === kind && e.regarding.name === name).map((e) => `${e.type}/${e.reason}`);
    assert.ok(events.every((e) => e.reportingController === 'airlock.dev/operator'));
    // pii: Ready True, False (bad pattern), True (fixed), False, True (the digest test)
    assert.deepEqual(of('MaskingPolicy', 'pii'), ['Normal/RulesCompiled', 'Warning/InvalidRule', 'Normal/RulesCompiled', 'Warning/InvalidRule', 'Normal/RulesCompiled']);
    const connectionEvents = of('AgentConnection', 'orders-db');
    assert.ok(connectionEvents.includes('Warning/SecretNotFound'), connectionEvents.join());
    assert.ok(connectionEvents.includes('Normal/SecretResolved'), connectionEvents.join());
    assert.ok(connectionEvents.includes('Warning/SecretKeyMissing'), connectionEvents.join());
    assert.ok(connectionEvents.includes('Warning/InvalidPolicy'), connectionEvents.join());
    const invalid = events.find((e) => e.reason === 'InvalidRule' && e.regarding.name === 'pii');
    assert.match(invalid?.note ?? '', /^Ready is False: .*rule "employee-ids"/);
  });

  test('status is not rewritten when nothing changed: resourceVersions stay across resyncs', async () => {
    const versions = async (): Promise<string[]> => [
      (await object('aconn', 'orders-db')).metadata.resourceVersion,
      (await object('mpol', 'pii')).metadata.resourceVersion,
      (await object('arule', 'guardrails')).metadata.resourceVersion,
    ];
    const reconciles = async (): Promise<number> => metric((await get('/metrics')).body, 'airlock_operator_reconcile_total', 'kind="AgentConnection",result="success"');
    const before = await versions();
    const reconciledBefore = await reconciles();
    await sleep(RESYNC_SECONDS * 2500);
    assert.ok((await reconciles()) >= reconciledBefore + 2, 'resyncs reconciled the connection again');
    assert.deepEqual(await versions(), before);
  });

  test('SIGTERM stops it gracefully', async () => {
    assert.equal(await stopOperator(operator), 0);
    assert.match(operator.logs(), /"message":"stopped"/);
  });
});

describe('leader election: two replicas, one reconciles, the other takes over', () => {
  const electing = ['--leader-elect', '--leader-election-namespace', NS, '--leader-election-id', 'airlock-operator-e2e'];
  const identity = (running: RunningOperator): string => /"identity":"([^"]+)"/.exec(running.logs())?.[1] ?? '';
  const holder = async (): Promise<string> => (await cp.kubectl(['get', 'lease', 'airlock-operator-e2e', '-n', NS, '-o', 'jsonpath={.spec.holderIdentity}'])).stdout;
  const reconciles = async (running: RunningOperator): Promise<number> =>
    (await get('/metrics', running)).body
      .split('\n')
      .filter((l) => l.startsWith('airlock_operator_reconcile_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  let first: RunningOperator;
  let second: RunningOperator;
  let leader: RunningOperator;
  let standby: RunningOperator;

  test('one replica holds the Lease and reconciles; the other only keeps its caches', async () => {
    first = startOperator(electing);
    second = startOperator(electing);
    for (const running of [first, second]) await until('/readyz 200', () => get('/readyz', running), (r) => r.status === 200);
    const holding = await until('a Lease holder', holder, (h) => h !== '' && [identity(first), identity(second)].includes(h));
    [leader, standby] = holding === identity(first) ? [first, second] : [second, first];
    await ok(['apply', '-f', '-'], maskingPolicy('elected', 'EMP-[0-9]{6}'));
    await until('elected Ready=True', () => statusOf('mpol', 'elected'), (s) => is(s, 'Ready', 'True'));
    assert.ok((await reconciles(leader)) > 0);
    await sleep(RESYNC_SECONDS * 1500);
    assert.equal(await reconciles(standby), 0, 'the standby reconciled');
    assert.doesNotMatch(standby.logs(), /"message":"leader election: leading"/);
  });

  test('the leader releases the Lease on SIGTERM and the standby takes over', async () => {
    assert.equal(await stopOperator(leader), 0);
    assert.match(leader.logs(), /"message":"leader election: lease released"/);
    await until('the standby to hold the Lease', holder, (h) => h === identity(standby));
    await ok(['apply', '-f', '-'], maskingPolicy('elected', '(?<=x)y'));
    await until('elected Ready=False', () => statusOf('mpol', 'elected'), (s) => is(s, 'Ready', 'False'));
    assert.ok((await reconciles(standby)) > 0);
    const transitions = (await ok(['get', 'lease', 'airlock-operator-e2e', '-n', NS, '-o', 'jsonpath={.spec.leaseTransitions}'])).trim();
    assert.equal(transitions, '1');
    assert.equal(await stopOperator(standby), 0);
  });

  test('a leader that finds the Lease taken stops reconciling and exits 1', async () => {
    const alone = startOperator(electing);
    await until('it to hold the Lease', holder, (h) => h !== '' && h === identity(alone));
    const renewTime = new Date().toISOString().replace('Z', '000Z');
    await ok(['patch', 'lease', 'airlock-operator-e2e', '-n', NS, '--type', 'merge', '-p', JSON.stringify({ spec: { holderIdentity: 'intruder', renewTime, leaseDurationSeconds: 60 } })]);
    const [code] = (await once(alone.child, 'exit')) as [number | null];
    assert.equal(code, 1);
    assert.match(alone.logs(), /"message":"leader election: leadership lost"/);
    assert.equal(await holder(), 'intruder', 'it did not release a Lease it no longer holds');
  });
});

describe('airlock operator: bad arguments get a clear error and exit 2', () => {
  const run = async (args: readonly string[]): Promise<{ code: number | null; stderr: string }> => {
    const child = spawn(process.execPath, [join(ROOT, 'cli', 'src', 'main.ts'), 'operator', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stderr };
  };

  test('--metrics-addr that is not host:port', async () => {
    assert.deepEqual(await run(['--metrics-addr', '8080']), { code: 2, stderr: 'airlock operator: address "8080" is not host:port\n' });
  });

  test('a kubeconfig that cannot be read', async () => {
    const r = await run(['--kubeconfig', '/nonexistent/kubeconfig']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^airlock operator: cannot load the kubeconfig: ENOENT/);
  });

  test('--resync-period that is not a duration, --workers that is not a count', async () => {
    assert.match((await run(['--resync-period', 'soon'])).stderr, /invalid duration "soon"/);
    assert.match((await run(['--workers', '0'])).stderr, /--workers must be a positive integer \(got "0"\)/);
  });
});
