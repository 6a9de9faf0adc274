/**
 * The webhook server over real HTTPS on loopback, with a plain ClusterView (no cluster): malformed
 * reviews get a precise 400, the uid is echoed, the patch is base64 JSON Patch, probes and
 * metrics, a certificate rewritten in place is served without a restart (a half-written pair is
 * never), and a stop lets an in-flight admission finish.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Namespace } from '@kubernetes/client-node';
import { DECISION_ANNOTATION, WEBHOOK_PATHS } from '@airlock/api';
import { systemClock } from '@airlock/kube';
import type { ClusterView } from '../src/caches.ts';
import { jsonLogger } from '../src/log.ts';
import { Webhook } from '../src/webhook.ts';
import { createCa, issueServing, type TestCa } from './pki.ts';

let dir: string;
let ca: TestCa;
let webhook: Webhook;
let port: number;
let metricsPort: number;
let synced = false;
let logs = '';

const view: ClusterView = {
  get synced() {
    return synced;
  },
  notSynced: () => (synced ? [] : ['informer agentconnections']),
  namespace: (name) => Promise.resolve({ metadata: { name, labels: { 'airlock.dev/inject': 'enabled' } } } as unknown as V1Namespace),
  connections: () => (synced ? [] : undefined),
  service: () => undefined,
  endpointSlices: () => [],
};

function post(path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', ca: ca.cert, servername: 'localhost', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function serial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, ''));
      socket.end();
    });
    socket.on('error', reject);
  });
}

function review(request: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
}

const approvalUpdate = (uid: string): string => {
  const old = {
    metadata: { name: 'r', namespace: 'agents', uid: 'x', annotations: {} },
    spec: { approvers: { users: ['alice'] }, required: 1, requester: { pod: 'p', serviceAccount: 'agent' }, expiresAt: '2999-01-01T00:00:00Z' },
  };
  return review({
    uid,
    kind: { group: 'airlock.dev', version: 'v1alpha1', kind: 'ApprovalRequest' },
    resource: { group: 'airlock.dev', version: 'v1alpha1', resource: 'approvalrequests' },
    name: 'r',
    namespace: 'agents',
    operation: 'UPDATE',
    userInfo: { username: 'alice', groups: ['system:authenticated'] },
    object: { ...old, metadata: { ...old.metadata, annotations: { [DECISION_ANNOTATION]: 'approve' } } },
    oldObject: old,
    dryRun: true,
  });
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'airlock-webhook-test-'));
  mkdirSync(join(dir, 'tls'));
  ca = await createCa();
  const pair = await issueServing(ca);
  writeFileSync(join(dir, 'tls', 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls', 'tls.key'), pair.key);
  writeFileSync(join(dir, 'tls', 'ca.crt'), ca.cert);
  writeFileSync(join(dir, 'key'), Buffer.alloc(32, 1));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString('utf8');
      done();
    },
  });
  const log = jsonLogger('debug', sink);
  webhook = new Webhook({
    view,
    clock: systemClock,
    log,
    options: {
      listen: { host: '127.0.0.1', port: 0 },
      metrics: { host: '127.0.0.1', port: 0 },
      tlsDir: join(dir, 'tls'),
      approvalKeyFile: join(dir, 'key'),
      sidecar: { image: 'airlock:test', controlUrl: 'https://control:8443' },
      airlockNamespace: 'airlock-system',
      pollMs: 100,
      shutdownGraceMs: 5000,
    },
  });
  const addresses = await webhook.start();
  port = addresses.admission.port;
  metricsPort = addresses.metrics.port;
});

after(async () => {
  await webhook.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a malformed review gets a precise 400, never a crash', async () => {
  const cases: readonly [string, RegExp][] = [
    ['{not json', /the body is not JSON/],
    ['"a string"', /the body is not JSON|an AdmissionReview object is expected/],
    [JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), /apiVersion: Unsupported value: "admission.k8s.io\/v1beta1"/],
    [review({ kind: { version: 'v1', kind: 'Pod' } }), /request\.uid: Required value/],
    [review({ uid: 'u', kind: { version: 'v1', kind: 'Pod' }, resource: { version: 'v1', resource: 'pods' }, operation: 'PATCH', userInfo: { username: 'a' } }), /request\.operation: Unsupported value: "PATCH"/],
    [review({ uid: 'u', kind: { version: 'v1', kind: 'Pod' }, resource: { version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: { username: 'a', groups: 'x' } }), /request\.userInfo\.groups/],
    [review({ uid: 'u', kind: { version: 'v1', kind: 'Pod' }, resource: { version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: { username: 'a' }, object: [] }), /request\.object: Invalid value/],
  ];
  for (const [body, message] of cases) {
    const res = await post(WEBHOOK_PATHS.injectPods, body);
    assert.equal(res.status, 400, res.body);
    const parsed = JSON.parse(res.body) as { code: string; message: string };
    assert.equal(parsed.code, 'InvalidReview');
    assert.match(parsed.message, message);
  }
  assert.equal((await post('/nowhere', '{}')).status, 404);
});

test('the response echoes the uid and carries a base64 JSON patch; dry-run has no side effect', async () => {
  const res = await post(WEBHOOK_PATHS.approvalDecisions, approvalUpdate('uid-42'));
  assert.equal(res.status, 200, res.body);
  const out = JSON.parse(res.body) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType: string; patch: string; warnings: string[] } };
  assert.equal(out.apiVersion, 'admission.k8s.io/v1');
  assert.equal(out.kind, 'AdmissionReview');
  assert.equal(out.response.uid, 'uid-42');
  assert.equal(out.response.allowed, true);
  assert.equal(out.response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(out.response.patch, 'base64').toString('utf8')) as { op: string; path: string }[];
  assert.deepEqual(patch.map((p) => [p.op, p.path]), [['remove', '/metadata/annotations/airlock.dev~1decision'], ['add', '/metadata/annotations/airlock.dev~1decisions']]);
  assert.match(out.response.warnings[0] ?? '', /decision recorded: alice approved/);
});

test('opted-in pods are refused while the caches have not synced; /readyz says why', async () => {
  const pod = review({
    uid: 'p1',
    kind: { version: 'v1', kind: 'Pod' },
    resource: { version: 'v1', resource: 'pods' },
    namespace: 'agents',
    operation: 'CREATE',
    userInfo: { username: 'a' },
    object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'agents' }, spec: { containers: [{ name: 'c', image: 'i' }] } },
  });
  const res = JSON.parse((await post(WEBHOOK_PATHS.injectPods, pod)).body) as { response: { uid: string; allowed: boolean; status: { code: number; message: string } } };
  assert.equal(res.response.allowed, false);
  assert.equal(res.response.status.code, 503);
  assert.match(res.response.status.message, /has not synced its caches of AgentConnections yet/);
  const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
  assert.equal(ready.status, 503);
  assert.match(await ready.text(), /not ready: informer agentconnections/);
  synced = true;
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200);
  const allowed = JSON.parse((await post(WEBHOOK_PATHS.injectPods, pod)).body) as { response: { allowed: boolean; patch?: string } };
  assert.deepEqual(allowed.response, { uid: 'p1', allowed: true }, 'no AgentConnection selects it: untouched');
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, /airlock_webhook_admission_requests_total\{webhook="pods",result="denied"\} 1/);
  assert.match(metrics, /airlock_webhook_admission_requests_total\{webhook="pods",result="allowed"\} 1/);
  assert.match(metrics, /airlock_webhook_admission_requests_total\{webhook="pods",result="error"\} [1-9]/);
});

test('a certificate rewritten in place is served without a restart; a mismatched pair is not', async () => {
  const first = await serial();
  const next = await issueServing(ca);
  const other = await issueServing(ca);
  // half-way: the new certificate with the old key: refused, the old pair stays in force
  writeFileSync(join(dir, 'tls', 'tls.crt'), next.cert);
  writeFileSync(join(dir, 'tls', 'tls.key'), other.key);
  await sleep(400);
  assert.equal(await serial(), first);
  assert.match(logs, /files not loaded; keeping the previous ones/);
  assert.match(await webhook.metrics.registry.getSingleMetricAsString('airlock_webhook_tls_reloads_total'), /result="failed"\} [1-9]/);
  writeFileSync(join(dir, 'tls', 'tls.key'), next.key);
  const deadline = Date.now() + 5000;
  while ((await serial()) !== next.serial.replace(/^0+/, '') && Date.now() < deadline) await sleep(50);
  assert.equal(await serial(), next.serial.replace(/^0+/, ''));
  assert.equal((await post(WEBHOOK_PATHS.approvalDecisions, approvalUpdate('after-rotation'))).status, 200);
});

test('a stop lets an in-flight admission finish and refuses new connections', async () => {
  const { AdmissionServer, admissionApp } = await import('../src/server.ts');
  const { WebhookMetrics } = await import('../src/metrics.ts');
  let release: () => void = () => undefined;
  const slow = new Promise<void>((resolve) => {
    release = resolve;
  });
  const entered = Promise.withResolvers<undefined>();
  const server = new AdmissionServer(
    admissionApp({
      handlers: {
        pods: async () => {
          entered.resolve(undefined);
          await slow;
          return { allowed: true };
        },
        approvalrequests: () => ({ allowed: true }),
        policies: () => ({ allowed: true }),
      },
      metrics: new WebhookMetrics(),
      log: jsonLogger('error'),
    }),
  );
  const pair = await issueServing(ca);
  server.setCertificate({ cert: Buffer.from(pair.cert), key: Buffer.from(pair.key) });
  const address = await server.listen('127.0.0.1', 0);
  const saved = port;
  port = address.port;
  try {
    const body = review({ uid: 'slow', kind: { version: 'v1', kind: 'Pod' }, resource: { version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: { username: 'a' } });
    const inFlight = post(WEBHOOK_PATHS.injectPods, body);
    await entered.promise;
    const closed = server.close(5000);
    await sleep(100);
    await assert.rejects(post(WEBHOOK_PATHS.injectPods, body), /ECONNREFUSED/);
    release();
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as { response: { uid: string } }).response.uid, 'slow');
    await closed;
  } finally {
    port = saved;
  }
});
