/**
 * The operator's control API against a real kube-apiserver + etcd: projected service-account
 * tokens issued by the API server (kubectl create token ... --bound-object-kind Pod), verified
 * against its issuer keys; the bundle with the Secret's credentials and the PolicyCompiled digest
 * the sidecar recomputes; refusals with stable codes and Events; the long poll woken by a
 * kubectl apply; approvals and session reports routed to their services. Pods stay Pending (no
 * node): the control API only needs them to exist.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair, importPKCS8 } from 'jose';
import { compileBundle } from '@airlock/policy';
import type { Manifest, SidecarBundle } from '@airlock/api';
import { compileSidecarBundle } from '@airlock/sidecar';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { until as untilHolds } from '../src/wait.ts';

const NS = 'ctl-e2e';
const AIRLOCK_NS = 'airlock-system';

let cp: ControlPlane;
let child: ChildProcess;
let logs = '';
let tlsDir: string;
let ca: string;
let controlPort = 0;
let metricsBase = '';

interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly ms: number;
}

interface Bundle {
  revision: string;
  pod: { namespace: string; name: string; uid: string; serviceAccount: string };
  connections: { name: string; digest: string; objects: { apiVersion: string; kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: unknown }[] }[];
}

/** one HTTPS request to the control API, trusting the test CA */
function call(method: string, path: string, token: string | undefined, body?: unknown, target: { readonly port: number; readonly ca: string; readonly servername?: string } = { port: controlPort, ca }): Promise<Reply> {
  const started = Date.now();
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target.port,
        path,
        method,
        ca: target.ca,
        servername: target.servername ?? 'localhost',
        headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : (JSON.parse(text) as unknown), ms: Date.now() - started });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const until = <T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, ms = 60_000): Promise<T> => untilHolds(what, read, accept, { timeoutMs: ms, context: () => `operator logs:\n${logs.slice(-4000)}` });

const pod = (name: string, serviceAccount: string, injected = true, labels = '{ app: agent }'): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
  labels: ${labels}
${injected ? '  annotations: { airlock.dev/injected: "test" }\n' : ''}spec:
  serviceAccountName: ${serviceAccount}
  automountServiceAccountToken: false
  containers: [{ name: agent, image: busybox }]
`;

const maskingPolicy = (pattern: string): string => `apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: pii, namespace: ${NS} }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - name: employee-ids
      match: { pattern: ${JSON.stringify(pattern)} }
      action: { type: redact }
`;

const objects = `apiVersion: v1
kind: Secret
metadata: { name: orders-db-credentials, namespace: ${NS} }
stringData: { username: planner, password: change-me }
---
apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: orders-db, namespace: ${NS}, labels: { data: pii } }
spec:
  protocol: postgres
  target: { host: orders-db.example, port: 5432, database: orders }
  credentialsSecretRef: { name: orders-db-credentials }
  agents: { podSelector: { matchLabels: { app: agent } }, serviceAccounts: [planner] }
---
apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: no-secret-db, namespace: ${NS} }
spec:
  protocol: postgres
  target: { host: other.example, port: 5432, database: other }
  credentialsSecretRef: { name: missing-credentials }
  agents: { serviceAccounts: [planner] }
---
apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: guard, namespace: ${NS} }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - name: writes
      match: { sql: { classes: [write] } }
      action: RequireApproval
      approval: { approvers: { users: [alice] }, timeout: 10m }
`;

async function uid(name: string): Promise<string> {
  return (await ok(['get', 'pod', name, '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).trim();
}

async function token(serviceAccount: string, podName: string | undefined, audience = 'airlock.dev'): Promise<string> {
  const bound = podName === undefined ? [] : ['--bound-object-kind', 'Pod', '--bound-object-name', podName, '--bound-object-uid', await uid(podName)];
  return (await ok(['create', 'token', serviceAccount, '-n', NS, '--audience', audience, ...bound])).trim();
}

function code(reply: Reply): string {
  return (reply.body as { code?: string } | undefined)?.code ?? '';
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

before(async () => {
  cp = startControlPlane();
  tlsDir = mkdtempSync(join(tmpdir(), 'airlock-control-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=airlock-operator',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(tlsDir, 'tls.key'), '-out', join(tlsDir, 'tls.crt'),
  ], { stdio: 'ignore' });
  ca = readFileSync(join(tlsDir, 'tls.crt'), 'utf8');
  await ok(['apply', '-f', join(ROOT, 'crds')]);
  await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
  await ok(['create', 'namespace', NS]);
  await ok(['create', 'namespace', AIRLOCK_NS]);
  for (const sa of ['planner', 'other']) await ok(['create', 'serviceaccount', sa, '-n', NS]);
  await ok(['apply', '-f', '-'], `${objects}---\n${maskingPolicy('EMP-[0-9]{6}')}`);
  child = spawn(
    process.execPath,
    [
      join(ROOT, 'cli', 'src', 'main.ts'), 'operator', '--kubeconfig', cp.kubeconfig, '--metrics-addr', '127.0.0.1:0', '--control-addr', '127.0.0.1:0',
      '--control-tls-dir', tlsDir, '--manage-certificates=false', '--airlock-namespace', AIRLOCK_NS,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => (logs += chunk));
  const address = await until('the control API to listen', () => Promise.resolve(/"controlAddress":"127\.0\.0\.1:(\d+)"/.exec(logs)?.[1]), (p) => p !== undefined);
  controlPort = Number(address);
  metricsBase = `http://${/"address":"([0-9.]+:[0-9]+)"/.exec(logs)?.[1] ?? ''}`;
  await until('/readyz', async () => (await fetch(`${metricsBase}/readyz`)).status, (s) => s === 200);
});

after(async () => {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  cp.stop();
  rmSync(tlsDir, { recursive: true, force: true });
});

describe('control API: a sidecar token bound to a live, granted pod', () => {
  let agentToken = '';
  let first: Bundle;

  test('a valid token gets the bundle: the connection, its policies, the Secret; the status digest', async () => {
    await ok(['apply', '-f', '-'], pod('agent-1', 'planner'));
    agentToken = await token('planner', 'agent-1');
    const reply = await until('a 200 bundle', () => call('GET', '/v1/bundle', agentToken), (r) => r.status === 200);
    first = reply.body as Bundle;
    assert.deepEqual(first.pod, { namespace: NS, name: 'agent-1', uid: await uid('agent-1'), serviceAccount: 'planner' });
    assert.match(first.revision, /^sha256:[0-9a-f]{64}$/);
    // no-secret-db grants the pod too, but its Secret is missing: left out, so the sidecar refuses it
    assert.deepEqual(first.connections.map((c) => c.name), ['orders-db']);
    const [connection] = first.connections;
    assert.ok(connection);
    assert.deepEqual(connection.objects.map((o) => `${o.kind}/${o.metadata.name}`), ['AgentConnection/orders-db', 'MaskingPolicy/pii', 'ApprovalRule/guard', 'Secret/orders-db-credentials']);
    const secret = connection.objects.find((o) => o.kind === 'Secret');
    assert.equal(Buffer.from(secret?.data?.['password'] ?? '', 'base64').toString(), 'change-me');
    assert.ok(!JSON.stringify(connection.objects).includes('managedFields'));

    const statusDigest = await until(
      'the PolicyCompiled digest',
      async () => (await ok(['get', 'aconn', 'orders-db', '-n', NS, '-o', 'jsonpath={.status.policies.bundleDigest}'])).trim(),
      (d) => d !== '',
    );
    assert.equal(connection.digest, statusDigest);
    // the sidecar compiles the objects as local mode compiles manifests: the same digest
    const manifests: Manifest[] = connection.objects.map((o, i) => ({
      source: 'control-api',
      document: i,
      apiVersion: o.apiVersion,
      kind: o.kind,
      name: o.metadata.name,
      namespace: NS,
      object: o,
    }));
    assert.equal(compileBundle(manifests, { connection: 'orders-db', namespace: NS, serviceAccount: 'planner' }).digest, statusDigest);
    // and the cluster sidecar's own path (schema validation and defaults, then compileBundle)
    const compiled = compileSidecarBundle(first as unknown as SidecarBundle).connections.get('orders-db');
    assert.ok(compiled);
    assert.equal(compiled.error, undefined);
    assert.equal(compiled.enforcement?.bundle?.digest, statusDigest);
  });

  test('without a change, the same revision; a long poll answers after waitSeconds with it', async () => {
    const again = await call('GET', '/v1/bundle', agentToken);
    assert.equal((again.body as Bundle).revision, first.revision);
    const waited = await call('GET', `/v1/bundle?revision=${encodeURIComponent(first.revision)}&waitSeconds=2`, agentToken);
    assert.equal(waited.status, 200);
    assert.equal((waited.body as Bundle).revision, first.revision);
    assert.ok(waited.ms >= 1900, `answered after ${waited.ms} ms`);
  });

  test('a kubectl apply of a changed MaskingPolicy answers a waiting long poll within 5 s with a new revision', async () => {
    const waiting = call('GET', `/v1/bundle?revision=${encodeURIComponent(first.revision)}&waitSeconds=30`, agentToken);
    await sleep(1000);
    let answeredAt = 0;
    void waiting.then(() => (answeredAt = Date.now()));
    await ok(['apply', '-f', '-'], maskingPolicy('EMP-[0-9]{7}'));
    // from the moment the API server stored it (kubectl's own start-up is not the operator's latency)
    const stored = Date.now();
    const reply = await waiting;
    const latency = Math.max(0, answeredAt - stored);
    assert.equal(reply.status, 200);
    assert.ok(latency < 5000, `answered ${latency} ms after the apply returned`);
    const next = reply.body as Bundle;
    assert.notEqual(next.revision, first.revision);
    const policy = next.connections[0]?.objects.find((o) => o.kind === 'MaskingPolicy');
    assert.match(JSON.stringify(policy?.spec), /EMP-\[0-9\]\{7\}/);
    assert.notEqual(next.connections[0]?.digest, first.connections[0]?.digest);
  });

  test('malformed queries and bodies get a 400 naming the field; an oversized body 413', async () => {
    const wait = await call('GET', '/v1/bundle?waitSeconds=600', agentToken);
    assert.equal(wait.status, 400);
    assert.equal(code(wait), 'InvalidQuery');
    const ask = await call('POST', '/v1/approvals', agentToken, { connection: 'orders-db' });
    assert.equal(ask.status, 400);
    assert.deepEqual(ask.body, { code: 'InvalidBody', message: 'rule: must be an object' });
    const notJson = await call('POST', '/v1/sessions', agentToken, '{"session":');
    assert.equal(notJson.status, 400);
    assert.equal(code(notJson), 'InvalidBody');
    const huge = await call('POST', '/v1/sessions', agentToken, { session: 'x'.repeat(300_000) });
    assert.equal(huge.status, 413);
    assert.equal(code(huge), 'BodyTooLarge');
  });
});

describe('control API: refusals with stable codes', () => {
  test('no token, a token for another audience → 401', async () => {
    const none = await call('GET', '/v1/bundle', undefined);
    assert.equal(none.status, 401);
    assert.equal(code(none), 'MissingToken');
    await ok(['apply', '-f', '-'], pod('agent-aud', 'planner'));
    const wrong = await call('GET', '/v1/bundle', await token('planner', 'agent-aud', 'https://example.com'));
    assert.equal(wrong.status, 401);
    assert.equal(code(wrong), 'WrongAudience');
  });

  test('an expired token signed with the API server key → 401 TokenExpired; one signed by another key → 401 InvalidToken', async () => {
    const real = await token('planner', 'agent-aud');
    const header = decodeProtectedHeader(real);
    const claims = decodeJwt(real);
    const now = Math.floor(Date.now() / 1000);
    const saKey = await importPKCS8(readFileSync(join(dirname(cp.kubeconfig), 'cluster', 'pki', 'sa.key'), 'utf8'), 'RS256');
    const expired = await new SignJWT({ ...claims, iat: now - 3600, nbf: now - 3600, exp: now - 600 }).setProtectedHeader({ alg: 'RS256', kid: header.kid ?? '' }).sign(saKey);
    const late = await call('GET', '/v1/bundle', expired);
    assert.equal(late.status, 401);
    assert.equal(code(late), 'TokenExpired');
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256', kid: header.kid ?? '' }).sign(privateKey);
    const bad = await call('GET', '/v1/bundle', forged);
    assert.equal(bad.status, 401);
    assert.equal(code(bad), 'InvalidToken');
    const garbage = await call('GET', '/v1/bundle', 'not.a.jwt');
    assert.equal(code(garbage), 'InvalidToken');
  });

  test('a token not bound to a pod → 403 NotPodBound', async () => {
    const reply = await call('GET', '/v1/bundle', await token('planner', undefined));
    assert.equal(reply.status, 403);
    assert.equal(code(reply), 'NotPodBound');
  });

  test('the pod was deleted → 403 PodNotFound', async () => {
    await ok(['apply', '-f', '-'], pod('agent-gone', 'planner'));
    const t = await token('planner', 'agent-gone');
    await until('a 200 while it lives', () => call('GET', '/v1/bundle', t), (r) => r.status === 200);
    await ok(['delete', 'pod', 'agent-gone', '-n', NS, '--grace-period=0', '--force', '--wait=false']);
    const reply = await until('a 403 once deleted', () => call('GET', '/v1/bundle', t), (r) => r.status === 403);
    assert.equal(code(reply), 'PodNotFound');
  });

  test("a token of an earlier pod of the same name (another pod's uid) → 403 PodUidMismatch", async () => {
    await ok(['apply', '-f', '-'], pod('agent-re', 'planner'));
    const old = await token('planner', 'agent-re');
    await ok(['delete', 'pod', 'agent-re', '-n', NS, '--grace-period=0', '--force']);
    await ok(['apply', '-f', '-'], pod('agent-re', 'planner'));
    const reply = await until('a 403', () => call('GET', '/v1/bundle', old), (r) => code(r) === 'PodUidMismatch');
    assert.equal(reply.status, 403);
    assert.match((reply.body as { message: string }).message, /uid/);
  });

  test('a pod no AgentConnection grants → 403 NotGranted, with an Event on the pod; a pod without a sidecar → 403 PodNotFound', async () => {
    await ok(['apply', '-f', '-'], pod('agent-other', 'other'));
    const reply = await until('a 403', async () => call('GET', '/v1/bundle', await token('other', 'agent-other')), (r) => r.status === 403);
    assert.equal(code(reply), 'NotGranted');
    // granted (planner, app=agent) but without the injection annotation: the cache does not hold it
    await ok(['apply', '-f', '-'], pod('agent-plain', 'planner', false));
    const plain = await call('GET', '/v1/bundle', await token('planner', 'agent-plain'));
    assert.equal(plain.status, 403);
    assert.equal(code(plain), 'PodNotFound');
    assert.match((plain.body as { message: string }).message, /no pod ctl-e2e\/agent-plain with an Airlock sidecar exists/);
    interface Event {
      reason: string;
      type: string;
      note: string;
      regarding: { kind: string; name: string };
    }
    const events = await until(
      'the Event on agent-other',
      async () => (JSON.parse(await ok(['get', 'events.events.k8s.io', '-n', NS, '-o', 'json'])) as { items: Event[] }).items,
      (items) => items.some((e) => e.regarding.kind === 'Pod' && e.regarding.name === 'agent-other' && e.reason === 'ControlAccessNotGranted'),
    );
    const event = events.find((e) => e.regarding.name === 'agent-other');
    assert.ok(event);
    assert.equal(event.type, 'Warning');
    assert.match(event.note, /no AgentConnection in namespace "ctl-e2e" grants pod agent-other/);
  });

  test('requests and refusals are counted in /metrics; bundle latency is a histogram', async () => {
    const text = await (await fetch(`${metricsBase}/metrics`)).text();
    assert.ok(metric(text, 'airlock_operator_control_requests_total', 'route="bundle",code="200"') >= 3, text);
    assert.ok(metric(text, 'airlock_operator_control_requests_total', 'route="bundle",code="403"') >= 4);
    assert.ok(metric(text, 'airlock_operator_control_refusals_total', 'code="WrongAudience"') >= 1);
    assert.match(text, /^airlock_operator_control_bundle_seconds_count [1-9]\d*$/m);
  });
});

describe('control API: approvals and session reports', () => {
  let agentToken = '';

  before(async () => {
    agentToken = await token('planner', 'agent-1');
  });

  test('with certificates issued elsewhere (--manage-certificates=false), the leader still creates the approval key', async () => {
    const data = await until('the approval key Secret', async () => (await cp.kubectl(['get', 'secret', 'airlock-approval-key', '-n', AIRLOCK_NS, '-o', 'jsonpath={.data.key}'])).stdout, (s) => s !== '');
    assert.ok(Buffer.from(data, 'base64').length >= 32);
  });

  test('POST /v1/approvals creates an ApprovalRequest; GET reads it; DELETE withdraws it', async () => {
    const ask = {
      connection: 'orders-db',
      session: 'sess-1',
      protocol: 'postgres',
      command: 'DELETE FROM orders WHERE id = $1',
      classes: ['write'],
      rule: { approvalRule: 'guard', name: 'writes' },
      approvers: { users: ['alice'], groups: [] },
      required: 1,
      requireReason: false,
      timeoutSeconds: 600,
      message: 'writes need a human',
    };
    const created = await call('POST', '/v1/approvals', agentToken, ask);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { name, namespace, annotate } = created.body as { name: string; namespace: string; annotate: string };
    assert.equal(namespace, NS);
    assert.match(annotate, new RegExp(`kubectl annotate approvalrequest ${name} .*airlock.dev/decision=approve`));
    assert.match(await ok(['get', 'approvalrequest', name, '-n', NS, '-o', 'jsonpath={.spec.command}']), /DELETE FROM orders/);
    const state = await call('GET', `/v1/approvals/${name}`, agentToken);
    assert.equal(state.status, 200);
    assert.equal((state.body as { phase: string }).phase, 'Pending');
    // another connection's name: not granted
    const foreign = await call('POST', '/v1/approvals', agentToken, { ...ask, connection: 'someone-elses-db' });
    assert.equal(foreign.status, 403);
    assert.equal(code(foreign), 'NotGranted');
    const withdrawn = await call('DELETE', `/v1/approvals/${name}`, agentToken);
    assert.equal(withdrawn.status, 204);
    const gone = await call('GET', `/v1/approvals/${name}`, agentToken);
    assert.equal(gone.status, 404);
    assert.equal(code(gone), 'NotFound');
  });

  test('POST /v1/sessions records the AgentSession', async () => {
    const report = {
      session: 'sess-1',
      connection: 'orders-db',
      protocol: 'postgres',
      seq: 1,
      type: 'start',
      startTime: new Date().toISOString(),
      counts: { statements: 0, rows: 0, maskedValues: 0, blocked: 0, approvals: 0 },
      recording: { path: `${NS}/agent-1/sess-1.jsonl`, records: 0 },
    };
    const reply = await call('POST', '/v1/sessions', agentToken, report);
    assert.equal(reply.status, 204, JSON.stringify(reply.body));
    const pod = await until('the AgentSession', async () => (await cp.kubectl(['get', 'agentsession', 'sess-1', '-n', NS, '-o', 'jsonpath={.status.pod}'])).stdout, (p) => p === 'agent-1');
    assert.equal(pod, 'agent-1');
  });
});

describe('control API: the certificate from the certificate manager (--manage-certificates)', () => {
  let managed: ChildProcess | undefined;

  after(async () => {
    if (managed !== undefined && managed.exitCode === null && managed.signalCode === null) {
      managed.kill('SIGTERM');
      await once(managed, 'exit');
    }
  });

  test('a second replica, managing certificates, serves the control API with the CA in airlock-control-tls', async () => {
    let text = '';
    managed = spawn(
      process.execPath,
      [
        join(ROOT, 'cli', 'src', 'main.ts'), 'operator', '--kubeconfig', cp.kubeconfig, '--metrics-addr', '127.0.0.1:0', '--control-addr', '127.0.0.1:0',
        '--airlock-namespace', AIRLOCK_NS, '--cert-extra-names', '127.0.0.1', '--cert-validity', '24h',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    managed.stderr?.setEncoding('utf8');
    managed.stderr?.on('data', (chunk: string) => (text += chunk));
    const port = Number(await until('the managed control API to listen', () => Promise.resolve(/"controlAddress":"127\.0\.0\.1:(\d+)"/.exec(text)?.[1]), (p) => p !== undefined));
    const caPem = Buffer.from((await ok(['get', 'secret', 'airlock-control-tls', '-n', AIRLOCK_NS, '-o', 'jsonpath={.data.ca\\.crt}'])).trim(), 'base64').toString();
    assert.match(caPem, /BEGIN CERTIFICATE/);
    // the name sidecars use: the Service's
    const reply = await call('GET', '/v1/bundle', await token('planner', 'agent-1'), undefined, { port, ca: caPem, servername: 'airlock-operator.airlock-system.svc' });
    assert.equal(reply.status, 200, `${JSON.stringify(reply.body)}\n${text.slice(-3000)}`);
    assert.deepEqual((reply.body as Bundle).connections.map((c) => c.name), ['orders-db']);
  });
});
