/**
 * The operator's certificate manager against a real kube-apiserver + etcd: it creates the CA, the
 * serving certificates and the approval key, patches caBundle into real webhook configurations
 * (created after it started), renews the serving certificates with the same CA and rotates the CA
 * with overlap — while the API server keeps calling a webhook on 127.0.0.1 that serves the
 * current certificate, and `openssl verify` checks the served certificate against the published
 * caBundle all along. A manager that is not the leader writes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get as httpsGet, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionregistrationV1Api, V1ConfigMap, V1ObjectMeta, type V1Secret } from '@kubernetes/client-node';
import { APPROVAL_KEY_SECRET, OBJECT_NAMES } from '@airlock/api';
import { startControlPlane, type ControlPlane } from '../src/controlplane.ts';
import { kubeFromConfig, loadKubeConfig, type Kube } from '../../operator/src/kube.ts';
import { jsonLogger } from '../../operator/src/log.ts';
import { systemClock } from '@airlock/kube';
import { CertificateManager, type CertificateManagerOptions, type ControlTls } from '../../operator/src/certs/manager.ts';
import { issueCa, issueServingCertificate, serviceNames } from '../../operator/src/certs/issue.ts';
import { inspectCertificate, inspectCertificates, signedBy } from '../../operator/src/certs/inspect.ts';
import { until as untilHolds } from '../src/wait.ts';

const NS = 'airlock-system';
const ADMITTED = 'certs-e2e';
const VALIDITY_MS = 15_000;
const OVERLAP_MS = 6_000;

let cp: ControlPlane;
let kube: Kube;
let admission: AdmissionregistrationV1Api;
let dir: string;
let webhook: Server | undefined;
let webhookPort = 0;
let admissionCalls = 0;
let stopServing = (): void => undefined;
const managers: CertificateManager[] = [];
const logs: string[] = [];

function managerFor(name: string, extra: Partial<CertificateManagerOptions> = {}): CertificateManager {
  const stream = new PassThrough();
  stream.setEncoding('utf8');
  stream.on('data', (line: string) => logs.push(`${name}: ${line.trim()}`));
  const manager = new CertificateManager({
    kube,
    clock: systemClock,
    log: jsonLogger('debug', stream),
    namespace: NS,
    validityMs: VALIDITY_MS,
    caOverlapMs: OVERLAP_MS,
    resyncMs: 2_000,
    extraNames: { webhook: ['127.0.0.1'], control: ['127.0.0.1'] },
    ...extra,
  });
  managers.push(manager);
  return manager;
}

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

async function secret(name: string): Promise<V1Secret | undefined> {
  try {
    return await kube.core.readNamespacedSecret({ name, namespace: NS });
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return undefined;
    throw err;
  }
}

function text(s: V1Secret | undefined, key: string): string {
  return Buffer.from(s?.data?.[key] ?? '', 'base64').toString('utf8');
}

const until = <T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> => untilHolds(what, probe, done, { timeoutMs, context: () => logs.slice(-30).join('\n') });

/** every caBundle of both configurations (decoded PEM) */
async function caBundles(): Promise<string[]> {
  const [mutating, validating] = await Promise.all([
    admission.readMutatingWebhookConfiguration({ name: OBJECT_NAMES.mutatingWebhookConfiguration }),
    admission.readValidatingWebhookConfiguration({ name: OBJECT_NAMES.validatingWebhookConfiguration }),
  ]);
  return [...(mutating.webhooks ?? []), ...(validating.webhooks ?? [])].map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
}

/** `openssl verify` of a serving certificate against a bundle, for 127.0.0.1 as the API server calls it */
function opensslVerify(cert: string, bundle: string): { ok: boolean; output: string } {
  const certFile = join(dir, 'leaf.pem');
  const bundleFile = join(dir, 'bundle.pem');
  writeFileSync(certFile, cert);
  writeFileSync(bundleFile, bundle);
  const r = spawnSync('openssl', ['verify', '-CAfile', bundleFile, '-purpose', 'sslserver', '-verify_ip', '127.0.0.1', certFile], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

let configMaps = 0;
/** a ConfigMap create in the namespace both webhooks intercept: the API server calls them over TLS */
async function admitted(): Promise<void> {
  const body = Object.assign(new V1ConfigMap(), { metadata: Object.assign(new V1ObjectMeta(), { name: `cm-${String(++configMaps)}` }), data: { n: String(configMaps) } });
  await kube.core.createNamespacedConfigMap({ namespace: ADMITTED, body });
}

interface Sample {
  readonly leaf: string;
  /** the CA that signed the served certificate */
  readonly signer: string;
  readonly ca: string;
  readonly bundles: readonly string[];
}

/** one moment: the served certificate chains to every published caBundle (openssl), and an admission through both webhooks succeeds */
async function sample(): Promise<Sample> {
  const [tls, bundles] = await Promise.all([secret(OBJECT_NAMES.webhookTlsSecret), caBundles()]);
  const leaf = text(tls, 'tls.crt');
  for (const bundle of bundles) {
    const verdict = opensslVerify(leaf, bundle);
    assert.ok(verdict.ok, `the webhook certificate does not verify against a published caBundle:\n${verdict.output}`);
  }
  await admitted();
  const served = inspectCertificate(leaf);
  const signer = inspectCertificates(bundles.join('')).find((c) => signedBy(served, c))?.fingerprint ?? '';
  return { leaf: served.fingerprint, signer, ca: inspectCertificate(text(await secret(OBJECT_NAMES.caSecret), 'ca.crt')).fingerprint, bundles };
}

/** serves both webhooks on 127.0.0.1 with the webhook Secret's certificate, reloaded (setSecureContext) when the Secret changes */
async function serveWebhook(): Promise<void> {
  const initial = await until('the webhook Secret', () => secret(OBJECT_NAMES.webhookTlsSecret), (s) => s !== undefined);
  let current = { cert: text(initial, 'tls.crt'), key: text(initial, 'tls.key') };
  const server = createServer(current, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      admissionCalls++;
      const review = JSON.parse(body) as { request: { uid: string } };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  webhook = server;
  webhookPort = (server.address() as AddressInfo).port;
  let running = true;
  const reload = async (): Promise<void> => {
    while (running) {
      const s = await secret(OBJECT_NAMES.webhookTlsSecret);
      const next = { cert: text(s, 'tls.crt'), key: text(s, 'tls.key') };
      if (next.cert !== '' && next.cert !== current.cert) {
        current = next;
        server.setSecureContext(next);
      }
      await sleep(250);
    }
  };
  const loop = reload();
  stopServing = () => {
    running = false;
    void loop;
  };
}

function webhookEntries(paths: readonly string[]): unknown[] {
  return paths.map((path, i) => ({
    name: `w${String(i)}.certs.airlock.dev`,
    clientConfig: { url: `https://127.0.0.1:${String(webhookPort)}${path}` },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
    namespaceSelector: { matchLabels: { 'certs-e2e': 'on' } },
    failurePolicy: 'Fail',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: 5,
  }));
}

before(async () => {
  cp = startControlPlane();
  kube = kubeFromConfig(loadKubeConfig(cp.kubeconfig));
  admission = kube.config.makeApiClient(AdmissionregistrationV1Api);
  dir = mkdtempSync(join(tmpdir(), 'airlock-certs-'));
  await ok(['create', 'namespace', NS]);
  await ok(['create', 'namespace', ADMITTED]);
  await ok(['label', 'namespace', ADMITTED, 'certs-e2e=on']);
});

after(async () => {
  stopServing();
  await Promise.all(managers.map((m) => m.stop()));
  webhook?.close();
  webhook?.closeAllConnections();
  cp.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('certificate manager on a real API server', () => {
  let follower: CertificateManager;
  let leader: CertificateManager;
  const followerChanges: ControlTls[] = [];

  test('a manager that is not the leader writes nothing', async () => {
    follower = managerFor('follower');
    follower.onChange((tls) => followerChanges.push(tls));
    follower.start();
    await until('the follower to list Secrets', () => Promise.resolve(follower.synced), (s) => s);
    await sleep(2_000);
    const secrets = JSON.parse(await ok(['get', 'secrets', '-n', NS, '-o', 'json'])) as { items: unknown[] };
    assert.deepEqual(secrets.items, []);
    assert.equal(follower.controlTls(), undefined);
  });

  test('the leader creates the CA, both TLS Secrets and the approval key; every replica reads the control certificate', async () => {
    leader = managerFor('leader');
    leader.start();
    leader.setLeader(true);
    const control = await until('the control TLS Secret', () => secret(OBJECT_NAMES.controlTlsSecret), (s) => s !== undefined);
    const ca = await secret(OBJECT_NAMES.caSecret);
    const tls = await secret(OBJECT_NAMES.webhookTlsSecret);
    assert.ok(ca !== undefined && tls !== undefined);
    assert.equal(ca.type, 'Opaque');
    assert.deepEqual(Object.keys(ca.data ?? {}).sort(), ['ca.crt', 'ca.key']);
    assert.equal(tls.type, 'kubernetes.io/tls');
    assert.deepEqual(Object.keys(tls.data ?? {}).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    assert.equal(text(tls, 'ca.crt'), text(ca, 'ca.crt'));
    assert.equal(inspectCertificate(text(ca, 'ca.crt')).node.subject, 'CN=airlock-ca');
    for (const [s, service] of [[tls, OBJECT_NAMES.webhookService], [control, OBJECT_NAMES.controlService]] as const) {
      const verdict = opensslVerify(text(s, 'tls.crt'), text(ca, 'ca.crt'));
      assert.ok(verdict.ok, verdict.output);
      assert.deepEqual(inspectCertificate(text(s, 'tls.crt')).dnsNames, [service, `${service}.${NS}`, `${service}.${NS}.svc`, `${service}.${NS}.svc.cluster.local`]);
    }
    const key = await until('the approval key', () => secret(APPROVAL_KEY_SECRET), (s) => s !== undefined);
    assert.equal(Buffer.from(key?.data?.key ?? '', 'base64').length, 32);
    const seen = await follower.waitForControlTls();
    assert.deepEqual(seen, { cert: text(control, 'tls.crt'), key: text(control, 'tls.key'), ca: text(control, 'ca.crt') });
  });

  test('configurations created later get the caBundle in every webhook, and admission through them works', async () => {
    await serveWebhook();
    await ok(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: OBJECT_NAMES.mutatingWebhookConfiguration }, webhooks: webhookEntries(['/mutate/a', '/mutate/b']) }));
    await ok(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: OBJECT_NAMES.validatingWebhookConfiguration }, webhooks: webhookEntries(['/validate']) }));
    const ca = text(await secret(OBJECT_NAMES.caSecret), 'ca.crt');
    await until('caBundle in all three webhooks', caBundles, (bundles) => bundles.length === 3 && bundles.every((b) => b === ca));
    const before = admissionCalls;
    await admitted();
    assert.equal(admissionCalls - before, 3, 'each webhook was called once');
  });

  test('serving certificates renew with the same CA, with no failed admission and openssl verifying at every sample', async () => {
    const first = await sample();
    const leaves = new Set([first.leaf]);
    const deadline = Date.now() + 2.5 * VALIDITY_MS;
    while (Date.now() < deadline && leaves.size < 3) {
      const s = await sample();
      assert.equal(s.ca, first.ca, 'the CA stays');
      leaves.add(s.leaf);
      await sleep(150);
    }
    assert.ok(leaves.size >= 3, `the webhook certificate was renewed twice (saw ${String(leaves.size)})\n${logs.slice(-20).join('\n')}`);
    // the control Secret is renewed in the same pass as the webhook's, written after it: the follower's watch may still be on its way
    await until('the follower to reload the renewed control certificate', () => Promise.resolve(followerChanges.length), (n) => n >= 3, VALIDITY_MS);
    assert.equal(followerChanges.at(-1)?.ca, text(await secret(OBJECT_NAMES.caSecret), 'ca.crt'));
  });

  test('a forced CA rotation trusts both CAs during the overlap, switches the leaves, drops the old CA; a sidecar injected before it still verifies', async () => {
    const start = await sample();
    const keyBefore = (await secret(APPROVAL_KEY_SECRET))?.data?.key;
    // what a sidecar injected now carries in its environment, for good
    const sidecarBundle = follower.controlTls()?.ca ?? '';
    assert.notEqual(sidecarBundle, '');
    await ok(['annotate', 'secret', OBJECT_NAMES.caSecret, '-n', NS, 'airlock.dev/rotate-ca=now']);
    const phases: string[] = [];
    const deadline = Date.now() + 40_000;
    let finished = false;
    while (Date.now() < deadline && !finished) {
      const s = await sample();
      const cas = s.bundles.map((b) => inspectCertificates(b).map((c) => c.fingerprint).join('+'));
      // the configurations are patched one after the other: the phase is that of the first one
      const bundle = cas[0] ?? '';
      const oldTrusted = bundle.includes(start.ca);
      const phase = !oldTrusted ? 'new CA only' : bundle.split('+').length === 2 ? (s.signer === start.ca ? 'both trusted, old signs' : 'both trusted, new signs') : 'old CA only';
      if (phases.at(-1) !== phase) phases.push(phase);
      finished = phase === 'new CA only';
      if (finished) assert.notEqual(s.signer, start.ca);
      await sleep(150);
    }
    assert.deepEqual(phases, ['old CA only', 'both trusted, old signs', 'both trusted, new signs', 'new CA only'], logs.slice(-30).join('\n'));
    const ca = await secret(OBJECT_NAMES.caSecret);
    assert.equal(ca?.metadata?.annotations?.['airlock.dev/rotate-ca'], undefined, 'the request was consumed');
    assert.deepEqual(Object.keys(ca?.data ?? {}).sort(), ['ca.crt', 'ca.key', 'cross.crt'], 'the old CA is gone; its certification of the new one stays');
    assert.equal((await secret(APPROVAL_KEY_SECRET))?.data?.key, keyBefore, 'the approval key is never rotated');
    await until('the follower to see the new bundle', () => Promise.resolve(follower.controlTls()?.ca), (c) => c === text(ca, 'ca.crt'));
    // that sidecar still verifies the control API, through the cross-certificate served after its certificate
    const control = await until('the control certificate with its chain', () => Promise.resolve(follower.controlTls()), (t) => (t?.cert.match(/BEGIN CERTIFICATE/g) ?? []).length === 2);
    assert.ok(control);
    assert.ok(!opensslVerify(control.cert, sidecarBundle).ok, 'the new certificate alone does not verify with the old bundle');
    const server = createServer({ cert: control.cert, key: control.key }, (_req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsGet({ host: '127.0.0.1', port, path: '/', ca: sidecarBundle, servername: `${OBJECT_NAMES.controlService}.${NS}.svc` }, (res) => {
          res.setEncoding('utf8');
          let data = '';
          res.on('data', (chunk: string) => (data += chunk));
          res.on('end', () => { resolve(data); });
        });
        req.on('error', reject);
      });
      assert.equal(body, 'ok');
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  test('a deleted Secret is recreated at once', async () => {
    await kube.core.deleteNamespacedSecret({ name: OBJECT_NAMES.controlTlsSecret, namespace: NS });
    const started = Date.now();
    await until('the control TLS Secret again', () => secret(OBJECT_NAMES.controlTlsSecret), (s) => s !== undefined, 5_000);
    assert.ok(Date.now() - started < 5_000);
  });

  test('with the leader gone, the follower renews nothing until it leads', async () => {
    await leader.stop();
    const snapshot = async (): Promise<string> =>
      JSON.stringify([
        ...(await Promise.all([OBJECT_NAMES.caSecret, OBJECT_NAMES.webhookTlsSecret, OBJECT_NAMES.controlTlsSecret, APPROVAL_KEY_SECRET].map(async (n) => (await secret(n))?.metadata?.resourceVersion))),
        (await admission.readMutatingWebhookConfiguration({ name: OBJECT_NAMES.mutatingWebhookConfiguration })).metadata?.resourceVersion,
        (await admission.readValidatingWebhookConfiguration({ name: OBJECT_NAMES.validatingWebhookConfiguration })).metadata?.resourceVersion,
      ]);
    const frozen = await snapshot();
    // longer than a renewal period: a leader would have renewed by now
    await sleep(VALIDITY_MS * 0.7);
    assert.equal(await snapshot(), frozen, 'nothing written without a leader');
    const leaf = text(await secret(OBJECT_NAMES.webhookTlsSecret), 'tls.crt');
    follower.setLeader(true);
    await until('the new leader to renew', () => secret(OBJECT_NAMES.webhookTlsSecret), (s) => text(s, 'tls.crt') !== leaf, 10_000);
    // without a leader the served certificate may have expired meanwhile (that is the point); the test's webhook reloads every 250 ms
    await sleep(1_000);
    await sample();
  });
});

describe('with --manage-certificates=false (cert-manager fills the Secrets)', () => {
  const CM_NS = 'airlock-cm';

  async function tlsSecret(namespace: string, cert: string, key: string, ca: string): Promise<void> {
    await ok(['-n', namespace, 'apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: OBJECT_NAMES.controlTlsSecret, namespace },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(cert).toString('base64'), 'tls.key': Buffer.from(key).toString('base64'), 'ca.crt': Buffer.from(ca).toString('base64') },
    }));
  }

  test('the leader writes only the approval key; every replica serves and reloads the Secret it is given', async () => {
    await ok(['create', 'namespace', CM_NS]);
    const configuration = 'airlock-cm-inject';
    await ok(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: configuration, annotations: { 'cert-manager.io/inject-ca-from': `${CM_NS}/airlock-webhook` } },
      webhooks: [{ name: 'w.cm.airlock.dev', clientConfig: { url: 'https://127.0.0.1:1/x' }, rules: [{ apiGroups: ['airlock.dev'], apiVersions: ['v1alpha1'], operations: ['CREATE'], resources: ['nothing'] }], sideEffects: 'None', admissionReviewVersions: ['v1'] }],
    }));
    const ca = await issueCa({ now: Date.now() });
    const names = serviceNames(OBJECT_NAMES.controlService, CM_NS);
    const first = await issueServingCertificate({ ca, names, now: Date.now() });
    await tlsSecret(CM_NS, first.cert, first.key, ca.cert);
    const manager = managerFor('unmanaged', { namespace: CM_NS, manageCertificates: false, webhookConfigurations: { mutating: configuration, validating: 'airlock-cm-validate' } });
    const changes: ControlTls[] = [];
    manager.onChange((tls) => changes.push(tls));
    manager.start();
    manager.setLeader(true);
    assert.deepEqual(await manager.waitForControlTls(), { cert: first.cert, key: first.key, ca: ca.cert });
    await until('the approval key', () => kube.core.readNamespacedSecret({ name: APPROVAL_KEY_SECRET, namespace: CM_NS }).catch(() => undefined), (s) => s !== undefined);
    await sleep(2_500);
    const secrets = (JSON.parse(await ok(['get', 'secrets', '-n', CM_NS, '-o', 'json'])) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name).sort();
    assert.deepEqual(secrets, [APPROVAL_KEY_SECRET, OBJECT_NAMES.controlTlsSecret].sort(), 'no CA, no webhook Secret');
    const webhooks = (await admission.readMutatingWebhookConfiguration({ name: configuration })).webhooks ?? [];
    assert.equal(webhooks[0]?.clientConfig.caBundle, undefined, 'the caBundle is left to the CA injector');
    // cert-manager renews: the replica reloads
    const renewed = await issueServingCertificate({ ca, names, now: Date.now() });
    await tlsSecret(CM_NS, renewed.cert, renewed.key, ca.cert);
    await until('the renewed certificate', () => Promise.resolve(changes.at(-1)?.cert), (c) => c === renewed.cert, 5_000);
  });
});
