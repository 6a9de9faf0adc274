/**
 * `airlock webhook` as a child process behind a real kube-apiserver + etcd, registered with the
 * configurations webhooks/src/config.ts builds (clientConfig.url on loopback, a caBundle from a
 * CA made here): sidecar injection, no-bypass refusals through kubectl, opt-out, kube-system,
 * failurePolicy Fail while the webhook is down, dry-run, policy validation with the same verdict
 * as `airlock validate`, approval identity by `kubectl annotate --as`, and a serving-certificate
 * rotation under a loop of admissions with no failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { DECISIONS_ANNOTATION, type RecordedDecision } from '@airlock/api';
import { verifyDecision } from '@airlock/policy';
import { webhookConfigurations } from '@airlock/webhooks';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { createCa, issueServing, type ServingPair, type TestCa } from '../../webhooks/test/pki.ts';
import { until as untilHolds } from '../src/wait.ts';

const AIRLOCK_NS = 'airlock-system';
const AGENTS = 'wh-agents';
const PLAIN = 'wh-plain';

let cp: ControlPlane;
let ca: TestCa;
let dir: string;
let tlsDir: string;
let keyFile: string;
let approvalKey: Buffer;
let webhook: RunningWebhook | undefined;
let port = 0;

interface RunningWebhook {
  readonly child: ChildProcess;
  logs(): string;
  /** admission and metrics ports, once it logged them */
  ports(): Promise<{ admission: number; metrics: number }>;
}

function startWebhook(listenPort: number): RunningWebhook {
  const script = `import { webhookCommand } from ${JSON.stringify(join(ROOT, 'cli', 'src', 'commands', 'webhook.ts'))};
process.exitCode = await webhookCommand(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr });`;
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      script,
      '--',
      '--kubeconfig', cp.kubeconfig,
      '--listen', `127.0.0.1:${listenPort}`,
      '--metrics-addr', '127.0.0.1:0',
      '--tls-dir', tlsDir,
      '--approval-key-file', keyFile,
      '--sidecar-image', 'airlock:e2e',
      '--sidecar-image-pull-policy', 'Never',
      '--control-url', 'https://airlock-operator.airlock-system.svc:8443',
      '--airlock-namespace', AIRLOCK_NS,
      '--log-level', 'debug',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT },
  );
  let text = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    text += chunk;
  });
  return {
    child,
    logs: () => text,
    ports: async () => {
      const line = await until('the webhook to serve', () => Promise.resolve(text.split('\n').find((l) => l.includes('"message":"serving"'))), (x) => x !== undefined || child.exitCode !== null);
      if (line === undefined) assert.fail(`the webhook exited:\n${text}`);
      const { address, metricsAddress } = JSON.parse(line) as { address: string; metricsAddress: string };
      return { admission: Number(address.split(':').at(-1)), metrics: Number(metricsAddress.split(':').at(-1)) };
    },
  };
}

async function stopWebhook(running: RunningWebhook): Promise<number | null> {
  if (running.child.exitCode !== null) return running.child.exitCode;
  running.child.kill('SIGTERM');
  const [code] = (await once(running.child, 'exit')) as [number | null];
  return code;
}

const until = <T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, ms = 30_000): Promise<T> => untilHolds(what, read, accept, { timeoutMs: ms, intervalMs: 100, context: () => `webhook logs:\n${webhook?.logs().slice(-4000) ?? ''}` });

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}\nwebhook logs:\n${webhook?.logs().slice(-3000) ?? ''}`);
  return r.stdout;
}

async function refused(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.notEqual(r.code, 0, `kubectl ${args.join(' ')} was expected to fail:\n${r.stdout}`);
  return r.stderr;
}

/** writes tls.crt/tls.key/ca.crt the way the kubelet updates a mounted Secret: a new directory, then an atomic swap of the ..data symlink */
function writeTls(pair: ServingPair): void {
  const stamp = `..${Date.now()}_${randomBytes(4).toString('hex')}`;
  mkdirSync(join(tlsDir, stamp));
  writeFileSync(join(tlsDir, stamp, 'tls.crt'), pair.cert);
  writeFileSync(join(tlsDir, stamp, 'tls.key'), pair.key);
  writeFileSync(join(tlsDir, stamp, 'ca.crt'), ca.cert);
  symlinkSync(stamp, join(tlsDir, '..data_tmp'));
  renameSync(join(tlsDir, '..data_tmp'), join(tlsDir, '..data'));
  for (const f of ['tls.crt', 'tls.key', 'ca.crt']) {
    try {
      symlinkSync(join('..data', f), join(tlsDir, f));
    } catch {
      // already a link through ..data
    }
  }
}

/** the serial number of the certificate the webhook serves now */
function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber.toLowerCase();
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

async function register(): Promise<void> {
  const { mutating, validating } = webhookConfigurations({ airlockNamespace: AIRLOCK_NS, target: { url: `https://127.0.0.1:${port}` }, caBundle: ca.cert });
  await ok(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [mutating, validating] }));
}

const connection = `apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: orders-db, namespace: ${AGENTS} }
spec:
  protocol: postgres
  target: { host: orders-db.databases.svc.cluster.local, port: 5432, database: orders }
  credentialsSecretRef: { name: orders-db-credentials }
  agents: { podSelector: { matchLabels: { app: agent } } }
`;

function pod(name: string, namespace: string, options: { labels?: Record<string, string>; spec?: Record<string, unknown>; container?: Record<string, unknown> } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: options.labels ?? { app: 'agent' } },
    spec: { containers: [{ name: 'agent', image: 'agent:1', ...(options.container ?? {}) }], ...(options.spec ?? {}) },
  });
}

interface PodJson {
  metadata: { annotations?: Record<string, string> };
  spec: { initContainers?: { name: string; restartPolicy?: string }[]; containers: { name: string }[] };
}

async function getPod(name: string, namespace: string): Promise<PodJson> {
  return JSON.parse(await ok(['get', 'pod', name, '-n', namespace, '-o', 'json'])) as PodJson;
}

function approvalRequest(name: string, extra: { requireReason?: boolean; required?: number; annotations?: Record<string, string> } = {}): string {
  return JSON.stringify({
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name, namespace: AGENTS, ...(extra.annotations === undefined ? {} : { annotations: extra.annotations }) },
    spec: {
      connection: 'orders-db',
      protocol: 'postgres',
      requester: { pod: 'agent-0', serviceAccount: 'agent', session: 's1' },
      command: 'DELETE FROM orders WHERE id = $1',
      classes: ['write'],
      rule: { approvalRule: 'guardrails', name: 'writes' },
      approvers: { users: ['alice'], groups: ['dba'] },
      required: extra.required ?? 2,
      requireReason: extra.requireReason ?? false,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    },
  });
}

interface RequestJson {
  metadata: { uid: string; annotations?: Record<string, string> };
}

async function decisionsOf(name: string): Promise<{ uid: string; decisions: RecordedDecision[]; annotations: Record<string, string> }> {
  const r = JSON.parse(await ok(['get', 'approvalrequest', name, '-n', AGENTS, '-o', 'json'])) as RequestJson;
  const annotations = r.metadata.annotations ?? {};
  const text = annotations[DECISIONS_ANNOTATION];
  return { uid: r.metadata.uid, decisions: text === undefined ? [] : (JSON.parse(text) as RecordedDecision[]), annotations };
}

function annotate(name: string, pairs: readonly string[], as: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cp.kubectl(['annotate', 'approvalrequest', name, '-n', AGENTS, ...pairs, ...as]);
}

async function validateFile(text: string): Promise<{ code: number; stderr: string }> {
  const file = join(dir, `policy-${randomBytes(4).toString('hex')}.yaml`);
  writeFileSync(file, text);
  const { validateCommand } = await import('../../cli/src/commands/validate.ts');
  let stderr = '';
  const code = await validateCommand(['-f', file], { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stderr };
}

before(async () => {
  cp = startControlPlane();
  dir = mkdtempSync(join(tmpdir(), 'airlock-webhook-e2e-'));
  tlsDir = join(dir, 'tls');
  mkdirSync(tlsDir);
  keyFile = join(dir, 'approval-key');
  approvalKey = randomBytes(32);
  writeFileSync(keyFile, approvalKey);
  ca = await createCa();
  writeTls(await issueServing(ca));
  // started before the CRDs exist: its AgentConnection informer fails, restarts with backoff, and syncs once they do
  webhook = startWebhook(0);
  const metricsPort = (await webhook.ports()).metrics;
  const early = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
  assert.equal(early.status, 503);
  assert.match(await early.text(), /not ready: .*informer agentconnections/);
  await ok(['apply', '-f', join(ROOT, 'crds')]);
  await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
  await ok(['create', 'namespace', AIRLOCK_NS]);
  await ok(['create', 'namespace', AGENTS]);
  await ok(['label', 'namespace', AGENTS, 'airlock.dev/inject=enabled']);
  await ok(['create', 'namespace', PLAIN]);
  // no controller-manager here: the ServiceAccount admission plugin needs each namespace's default account
  for (const ns of [AGENTS, PLAIN, AIRLOCK_NS, 'kube-system']) await ok(['create', 'serviceaccount', 'default', '-n', ns]);
  // the reviewers may read and annotate approval requests
  await ok(['create', 'clusterrole', 'reviewer', '--verb=get,list,patch,update', '--resource=approvalrequests.airlock.dev']);
  await ok(['create', 'clusterrolebinding', 'reviewers', '--clusterrole=reviewer', '--group=dba', '--user=mallory', '--serviceaccount=wh-agents:agent']);
  await ok(['apply', '-f', '-'], connection);
  port = (await webhook.ports()).admission;
  await register();
  await until('/readyz to answer 200', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, (s) => s === 200, 90_000);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, /airlock_webhook_informer_restarts_total\{informer="agentconnections"\} [1-9]/);
});

after(async () => {
  if (webhook !== undefined && webhook.child.exitCode === null) {
    webhook.child.kill('SIGKILL');
    await once(webhook.child, 'exit');
  }
  cp.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('airlock webhook against a real API server', () => {
  test('an opted-in pod gets the sidecar as a native sidecar; pods not opted in are untouched', async () => {
    await ok(['create', '-f', '-'], pod('agent-1', AGENTS));
    const injected = await getPod('agent-1', AGENTS);
    const sidecar = injected.spec.initContainers?.find((c) => c.name === 'airlock-proxy');
    assert.ok(sidecar, JSON.stringify(injected.spec));
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.ok(injected.metadata.annotations?.['airlock.dev/injected'] !== undefined);

    await ok(['create', '-f', '-'], pod('plain-1', PLAIN));
    assert.equal((await getPod('plain-1', PLAIN)).spec.initContainers, undefined);
    await ok(['create', '-f', '-'], pod('opted-out', AGENTS, { labels: { app: 'agent', 'airlock.dev/inject': 'false' } }));
    assert.equal((await getPod('opted-out', AGENTS)).spec.initContainers, undefined);
    // pod-label opt-in in a namespace that is not enabled
    await ok(['apply', '-f', '-'], connection.replace(`namespace: ${AGENTS}`, `namespace: ${PLAIN}`));
    await until('the AgentConnection in the cache', async () => (await cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: pod('probe', PLAIN, { labels: { app: 'agent', 'airlock.dev/inject': 'true' } }) })).stdout, (s) => s.includes('airlock-proxy'));
    await ok(['create', '-f', '-'], pod('pod-opt-in', PLAIN, { labels: { app: 'agent', 'airlock.dev/inject': 'true' } }));
    assert.ok((await getPod('pod-opt-in', PLAIN)).spec.initContainers?.some((c) => c.name === 'airlock-proxy'));
  });

  test('every no-bypass refusal reaches kubectl with the field named', async () => {
    const cases: readonly [string, Parameters<typeof pod>[2], RegExp][] = [
      ['net-admin', { container: { securityContext: { capabilities: { add: ['NET_ADMIN'] } } } }, /spec\.containers\[0\]\.securityContext\.capabilities\.add.*NET_ADMIN/],
      ['net-raw', { container: { securityContext: { capabilities: { add: ['NET_RAW'] } } } }, /spec\.containers\[0\]\.securityContext\.capabilities\.add.*NET_RAW/],
      ['privileged', { container: { securityContext: { privileged: true } } }, /spec\.containers\[0\]\.securityContext\.privileged/],
      ['sidecar-uid', { container: { securityContext: { runAsUser: 15532 } } }, /spec\.containers\[0\]\.securityContext\.runAsUser/],
      ['sidecar-gid', { spec: { securityContext: { runAsGroup: 15532 } } }, /spec\.securityContext\.runAsGroup/],
      ['host-network', { spec: { hostNetwork: true } }, /spec\.hostNetwork/],
      ['host-pid', { spec: { hostPID: true } }, /spec\.hostPID/],
      ['share-pns', { spec: { shareProcessNamespace: true } }, /spec\.shareProcessNamespace/],
      ['secret-volume', { spec: { volumes: [{ name: 'creds', secret: { secretName: 'orders-db-credentials' } }] } }, /spec\.volumes\[0\]\.secret\.secretName.*orders-db-credentials/],
      ['control-token', { spec: { volumes: [{ name: 'tok', projected: { sources: [{ serviceAccountToken: { audience: 'airlock.dev', path: 'token' } }] } }] } }, /spec\.volumes\[0\]\.projected\.sources\[0\]\.serviceAccountToken\.audience.*control API/],
      ['secret-env', { container: { env: [{ name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: 'orders-db-credentials', key: 'password' } } }] } }, /spec\.containers\[0\]\.env\[0\]\.valueFrom\.secretKeyRef\.name.*orders-db-credentials/],
    ];
    for (const [name, options, field] of cases) {
      const stderr = await refused(['create', '-f', '-'], pod(`bypass-${name}`, AGENTS, options));
      assert.match(stderr, /admission webhook "namespace\.inject\.airlock\.dev" denied the request/, `${name}: ${stderr}`);
      assert.match(stderr, field, `${name}: ${stderr}`);
      assert.equal((await cp.kubectl(['get', 'pod', `bypass-${name}`, '-n', AGENTS])).code, 1, `${name} must not exist`);
    }
  });

  test('after creation: the sidecar cannot be swapped, and debug containers obey the no-bypass rules', async () => {
    await ok(['create', '-f', '-'], pod('agent-upd', AGENTS));
    assert.ok((await getPod('agent-upd', AGENTS)).spec.initContainers?.some((c) => c.name === 'airlock-proxy'));
    // an image swap would run anything as the sidecar's UID with its token
    const swap = await refused(['set', 'image', 'pod/agent-upd', '-n', AGENTS, 'airlock-proxy=evil:1']);
    assert.match(swap, /spec\.initContainers\[\d+\].*airlock-proxy is Airlock's container and may not be changed after injection/, swap);
    // the agent's own image may change
    await ok(['set', 'image', 'pod/agent-upd', '-n', AGENTS, 'agent=agent:2']);
    // kubectl debug --profile=netadmin adds NET_ADMIN and NET_RAW: it could flush the capture rules
    const debug = await refused(['debug', 'pod/agent-upd', '-n', AGENTS, '--image=busybox', '--profile=netadmin', '-c', 'dbg', '--attach=false']);
    assert.match(debug, /spec\.ephemeralContainers\[0\]\.securityContext\.capabilities\.add.*NET_ADMIN/, debug);
    // a debug container with no privileges is fine
    await ok(['debug', 'pod/agent-upd', '-n', AGENTS, '--image=busybox', '--profile=restricted', '-c', 'dbg-ok', '--attach=false']);
  });

  test('dry-run admissions have no side effects', async () => {
    const out = JSON.parse(await ok(['create', '--dry-run=server', '-o', 'json', '-f', '-'], pod('dry-1', AGENTS))) as PodJson;
    assert.ok(out.spec.initContainers?.some((c) => c.name === 'airlock-proxy'));
    assert.equal((await cp.kubectl(['get', 'pod', 'dry-1', '-n', AGENTS])).code, 1);

    await ok(['create', '-f', '-'], approvalRequest('dry-req'));
    const r = await annotate('dry-req', ['airlock.dev/decision=approve', '--dry-run=server'], ['--as', 'alice', '--as-group', 'dba']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await decisionsOf('dry-req')).decisions, []);
  });

  test('policy validation refuses what airlock validate refuses, with the same field', async () => {
    const lookbehind = `apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: lookbehind, namespace: ${AGENTS} }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - name: ids
      match: { pattern: "(?<=id=)[0-9]+" }
      action: { type: redact }
`;
    const stderr = await refused(['apply', '-f', '-'], lookbehind);
    assert.match(stderr, /admission webhook "policies\.airlock\.dev" denied the request: MaskingPolicy "lookbehind" is invalid: spec\.rules\[0\]\.match\.pattern: Invalid value: rule "ids": invalid perl operator: \(\?</, stderr);
    const local = await validateFile(lookbehind);
    assert.equal(local.code, 1);
    assert.match(local.stderr, /MaskingPolicy\/lookbehind: spec\.rules\[0\]\.match\.pattern: Invalid value: rule "ids": invalid perl operator: \(\?</);

    const detector = lookbehind.replace('name: lookbehind', 'name: detector').replace('pattern: "(?<=id=)[0-9]+"', 'detectors: [not_a_detector]');
    const detectorStderr = await refused(['apply', '-f', '-'], detector);
    assert.match(detectorStderr, /spec\.rules\[0\]\.match\.detectors\[0\].*Unsupported value: "not_a_detector"/, detectorStderr);
    const detectorLocal = await validateFile(detector);
    assert.equal(detectorLocal.code, 1);
    assert.match(detectorLocal.stderr, /spec\.rules\[0\]\.match\.detectors\[0\]: Unsupported value/);

    const badSelector = lookbehind.replace('name: lookbehind', 'name: selector').replace('matchLabels: { data: pii }', 'matchLabels: { "bad key!": pii }').replace('"(?<=id=)[0-9]+"', '"EMP-[0-9]{6}"');
    assert.match(await refused(['apply', '-f', '-'], badSelector), /spec\.connectionSelector\.matchLabels: Invalid value: "bad key!"/);
    assert.equal((await validateFile(badSelector)).code, 1);

    const good = lookbehind.replace('"(?<=id=)[0-9]+"', '"id=[0-9]+"');
    await ok(['apply', '-f', '-'], good);
    assert.equal((await validateFile(good)).code, 0);

    // risky but legal: admitted, with warnings kubectl prints
    const risky = `apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: pii-db, namespace: ${AGENTS}, labels: { airlock.dev/data-classification: pii } }
spec:
  protocol: postgres
  target: { host: pii-db.example, port: 5432, database: pii }
  credentialsSecretRef: { name: pii-db-credentials }
  agents: { serviceAccounts: [nobody] }
  defaultAction: Allow
`;
    const applied = await cp.kubectl(['apply', '-f', '-'], { input: risky });
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stderr, /Warning: spec\.defaultAction is Allow on a connection labelled airlock\.dev\/data-classification=pii/);
    const riskyLocal = await validateFile(risky);
    assert.equal(riskyLocal.code, 0);
    assert.match(riskyLocal.stderr, /warning: spec\.defaultAction is Allow/);
  });

  test('approvals: identity from the request, signed, non-approver and self-approval refused, N-of-M, no forgery', async () => {
    await ok(['create', '-f', '-'], approvalRequest('req-1'));

    const first = await annotate('req-1', ['airlock.dev/decision=approve'], ['--as', 'alice', '--as-group', 'dba']);
    assert.equal(first.code, 0, first.stderr);
    let state = await decisionsOf('req-1');
    assert.equal(state.decisions.length, 1);
    const alice = state.decisions[0];
    assert.ok(alice);
    assert.equal(alice.user, 'alice');
    assert.ok(alice.groups.includes('dba'), JSON.stringify(alice));
    assert.equal(alice.decision, 'approve');
    assert.ok(verifyDecision(approvalKey, { namespace: AGENTS, name: 'req-1', uid: state.uid }, alice), 'the signature verifies with the approval key');
    assert.ok(!verifyDecision(approvalKey, { namespace: AGENTS, name: 'req-2', uid: state.uid }, alice), 'and only for this request');
    assert.equal(state.annotations['airlock.dev/decision'], undefined, 'the decision annotation is consumed');

    const mallory = await annotate('req-1', ['airlock.dev/decision=approve'], ['--as', 'mallory']);
    assert.notEqual(mallory.code, 0);
    assert.match(mallory.stderr, /denied the request: NotApprover: mallory is not an approver/);

    const self = await annotate('req-1', ['airlock.dev/decision=approve'], ['--as', 'system:serviceaccount:wh-agents:agent', '--as-group', 'dba']);
    assert.notEqual(self.code, 0);
    assert.match(self.stderr, /denied the request: SelfApproval: system:serviceaccount:wh-agents:agent is the service account of the agent that asked/);

    const twice = await annotate('req-1', ['airlock.dev/decision=approve'], ['--as', 'alice', '--as-group', 'dba']);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /AlreadyDecided: alice has already decided/);
    assert.equal((await decisionsOf('req-1')).decisions.length, 1, 'one person counts once toward N-of-M');

    const bob = await annotate('req-1', ['airlock.dev/decision=approve', 'airlock.dev/reason=looks fine'], ['--as', 'bob', '--as-group', 'dba']);
    assert.equal(bob.code, 0, bob.stderr);
    assert.match(bob.stderr, /Warning: decision recorded: bob approved \(phase now Approved\)/);
    state = await decisionsOf('req-1');
    assert.deepEqual(state.decisions.map((d) => [d.user, d.decision, d.reason]), [['alice', 'approve', undefined], ['bob', 'approve', 'looks fine']]);
    assert.ok(state.decisions.every((d) => verifyDecision(approvalKey, { namespace: AGENTS, name: 'req-1', uid: state.uid }, d)));
    assert.equal(state.annotations['airlock.dev/reason'], undefined);

    const late = await annotate('req-1', ['airlock.dev/decision=deny'], ['--as', 'carol', '--as-group', 'dba']);
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /NotPending: the request is already Approved/);

    // forging, editing or removing the recorded decisions is refused, whoever asks
    const forged = JSON.stringify([{ ...alice, user: 'root' }]);
    const forge = await cp.kubectl(['annotate', 'approvalrequest', 'req-1', '-n', AGENTS, '--overwrite', `${DECISIONS_ANNOTATION}=${forged}`]);
    assert.notEqual(forge.code, 0);
    assert.match(forge.stderr, /airlock\.dev\/decisions is written only by Airlock's approval webhook/);
    const removal = await cp.kubectl(['annotate', 'approvalrequest', 'req-1', '-n', AGENTS, `${DECISIONS_ANNOTATION}-`]);
    assert.notEqual(removal.code, 0);
    assert.equal((await decisionsOf('req-1')).decisions.length, 2);
    const created = await refused(['create', '-f', '-'], approvalRequest('req-forged', { annotations: { [DECISIONS_ANNOTATION]: forged } }));
    assert.match(created, /a new ApprovalRequest carries no recorded decisions/);

    // a reason where the rule requires one; a deny decides at once
    await ok(['create', '-f', '-'], approvalRequest('req-2', { requireReason: true }));
    const noReason = await annotate('req-2', ['airlock.dev/decision=deny'], ['--as', 'alice', '--as-group', 'dba']);
    assert.match(noReason.stderr, /ReasonRequired/);
    const denied = await annotate('req-2', ['airlock.dev/decision=deny', 'airlock.dev/reason=not during the freeze'], ['--as', 'alice', '--as-group', 'dba']);
    assert.equal(denied.code, 0, denied.stderr);
    assert.deepEqual((await decisionsOf('req-2')).decisions.map((d) => [d.user, d.decision, d.reason]), [['alice', 'deny', 'not during the freeze']]);
  });

  test('the serving certificate rotates under a loop of admissions with no failure', async () => {
    const before = await servedSerial();
    let stop = false;
    let admissions = 0;
    const failures: string[] = [];
    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfig);
    const core = config.makeApiClient(CoreV1Api);
    const loop = async (n: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        try {
          const created = await core.createNamespacedPod({ namespace: AGENTS, body: JSON.parse(pod(`rotate-${n}-${i}`, AGENTS)) as V1Pod, dryRun: 'All' });
          if (!(created.spec?.initContainers ?? []).some((c) => c.name === 'airlock-proxy')) failures.push(`rotate-${n}-${i}: not injected`);
        } catch (err) {
          failures.push(`rotate-${n}-${i}: ${err instanceof Error ? err.message : String(err)}`);
        }
        admissions++;
      }
    };
    const loops = [loop(0), loop(1), loop(2), loop(3)];
    const serials: string[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(1500);
      const next = await issueServing(ca);
      writeTls(next);
      serials.push(next.serial);
      await until('the new certificate to be served', servedSerial, (s) => s.replace(/^0+/, '') === next.serial.replace(/^0+/, ''), 10_000);
    }
    await sleep(1500);
    stop = true;
    await Promise.all(loops);
    assert.notEqual(serials.at(-1), before);
    assert.deepEqual(failures, []);
    assert.ok(admissions >= 40, `only ${admissions} admissions ran`);
  });

  test('metrics count admissions by webhook and result', async () => {
    assert.ok(webhook);
    const text = await (await fetch(`http://127.0.0.1:${(await webhook.ports()).metrics}/metrics`)).text();
    assert.match(text, /airlock_webhook_admission_requests_total\{webhook="pods",result="patched"\} [1-9]/);
    assert.match(text, /airlock_webhook_admission_requests_total\{webhook="pods",result="denied"\} [1-9]/);
    assert.match(text, /airlock_webhook_admission_requests_total\{webhook="approvalrequests",result="denied"\} [1-9]/);
    assert.match(text, /airlock_webhook_admission_requests_total\{webhook="policies",result="denied"\} [1-9]/);
    assert.match(text, /airlock_webhook_admission_duration_seconds_bucket\{le="0.02",webhook="pods"\} [1-9]/);
  });

  test('while the webhook is down, opted-in pods are refused (failurePolicy Fail); kube-system and pods not opted in are not blocked', async () => {
    assert.ok(webhook);
    assert.equal(await stopWebhook(webhook), 0);
    assert.match(webhook.logs(), /"message":"stopped"/);
    const stderr = await refused(['create', '-f', '-'], pod('while-down', AGENTS));
    assert.match(stderr, /failed calling webhook "namespace\.inject\.airlock\.dev"/, stderr);
    const byLabel = await refused(['create', '-f', '-'], pod('while-down-label', PLAIN, { labels: { app: 'agent', 'airlock.dev/inject': 'true' } }));
    assert.match(byLabel, /failed calling webhook "pod\.inject\.airlock\.dev"/, byLabel);
    await ok(['create', '-f', '-'], pod('plain-while-down', PLAIN));
    await ok(['label', 'namespace', 'kube-system', 'airlock.dev/inject=enabled']);
    await ok(['create', '-f', '-'], pod('system-while-down', 'kube-system', { labels: { app: 'agent', 'airlock.dev/inject': 'true' } }));
    await ok(['create', '-f', '-'], pod('airlock-own', AIRLOCK_NS, { labels: { app: 'agent', 'airlock.dev/inject': 'true' } }));

    // back on the same port: admitted again
    webhook = startWebhook(port);
    const metricsPort = (await webhook.ports()).metrics;
    await until('/readyz to answer 200', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, (s) => s === 200);
    await ok(['create', '-f', '-'], pod('after-restart', AGENTS));
    assert.ok((await getPod('after-restart', AGENTS)).spec.initContainers?.some((c) => c.name === 'airlock-proxy'));
  });
});
