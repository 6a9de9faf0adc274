import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { crossSign, issueCa, issueServingCertificate, serviceNames, type Issued, type ServingNames } from '../src/certs/issue.ts';
import {
  CA_KEYS,
  ROTATE_CA_ANNOTATION,
  TLS_KEYS,
  TLS_SECRET_TYPE,
  caBundlePatch,
  planCertificates,
  type CertificateSettings,
  type CertificateStep,
  type ConfigurationContents,
  type LeafName,
  type PlanInput,
  type SecretContents,
} from '../src/certs/plan.ts';
import { FakeClock } from './fake-clock.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 11, 4, 12, 0, 0);
const SETTINGS: CertificateSettings = { caValidityMs: 3650 * DAY, leafValidityMs: 90 * DAY, caOverlapMs: HOUR };
const NAMES: Record<LeafName, ServingNames> = {
  webhook: serviceNames('airlock-webhook', 'airlock-system', ['127.0.0.1']),
  control: serviceNames('airlock-operator', 'airlock-system'),
};

function tls(leaf: Issued, bundle: string): SecretContents {
  return { type: TLS_SECRET_TYPE, data: { [TLS_KEYS.cert]: leaf.cert, [TLS_KEYS.key]: leaf.key, [TLS_KEYS.ca]: bundle } };
}

function caSecret(ca: Issued, extra: Record<string, string> = {}, annotations: Record<string, string> = {}): SecretContents {
  return { type: 'Opaque', data: { [CA_KEYS.cert]: ca.cert, [CA_KEYS.key]: ca.key, ...extra }, annotations };
}

function config(bundle: string, webhooks = 2): ConfigurationContents {
  return { kind: 'mutating', name: 'airlock-inject', caBundles: Array.from({ length: webhooks }, () => bundle) };
}

function kinds(steps: readonly CertificateStep[]): string[] {
  return steps.map((s) => (s.kind === 'issueLeaf' || s.kind === 'updateLeafBundle' ? `${s.kind}:${s.leaf}` : s.kind === 'issueCa' ? `issueCa:${s.slot}` : s.kind === 'patchCaBundle' ? `patchCaBundle:${s.configuration.name}` : s.kind));
}

describe('planCertificates', () => {
  let ca: Issued;
  let other: Issued;
  let webhook: Issued;
  let control: Issued;
  let input: PlanInput;

  before(async () => {
    [ca, other] = await Promise.all([issueCa({ now: START }), issueCa({ now: START })]);
    [webhook, control] = await Promise.all([
      issueServingCertificate({ ca, names: NAMES.webhook, now: START, validityMs: SETTINGS.leafValidityMs }),
      issueServingCertificate({ ca, names: NAMES.control, now: START, validityMs: SETTINGS.leafValidityMs }),
    ]);
    input = {
      now: START + HOUR,
      settings: SETTINGS,
      ca: caSecret(ca),
      leaves: { webhook: tls(webhook, ca.cert), control: tls(control, ca.cert) },
      names: NAMES,
      configurations: [config(ca.cert), { kind: 'validating', name: 'airlock-validate', caBundles: [ca.cert] }],
    };
  });

  test('nothing yet: issue the CA, alone', () => {
    const plan = planCertificates({ ...input, ca: undefined, leaves: { webhook: undefined, control: undefined } });
    assert.deepEqual(kinds(plan.steps), ['issueCa:active']);
  });

  test('a CA Secret that holds garbage, an expired CA or a key of another CA: a new CA', () => {
    assert.deepEqual(kinds(planCertificates({ ...input, ca: { data: { [CA_KEYS.cert]: 'garbage', [CA_KEYS.key]: ca.key } } }).steps), ['issueCa:active']);
    assert.deepEqual(kinds(planCertificates({ ...input, ca: { data: { [CA_KEYS.cert]: ca.cert, [CA_KEYS.key]: other.key } } }).steps), ['issueCa:active']);
    assert.deepEqual(kinds(planCertificates({ ...input, now: START + 3651 * DAY }).steps), ['issueCa:active']);
    assert.deepEqual(kinds(planCertificates({ ...input, ca: { data: { [CA_KEYS.cert]: webhook.cert, [CA_KEYS.key]: webhook.key } } }).steps), ['issueCa:active'], 'a leaf is no CA');
  });

  test('a CA and nothing else: both serving certificates, and the configurations get the CA', () => {
    const plan = planCertificates({ ...input, leaves: { webhook: undefined, control: undefined }, configurations: [config(''), { kind: 'validating', name: 'airlock-validate', caBundles: [''] }] });
    assert.deepEqual(kinds(plan.steps), ['issueLeaf:webhook', 'issueLeaf:control', 'patchCaBundle:airlock-inject', 'patchCaBundle:airlock-validate']);
    assert.equal(plan.bundle, ca.cert);
    assert.deepEqual(plan.signer, ca);
  });

  test('everything in place: nothing to do, wake up at the first renewal', () => {
    const plan = planCertificates(input);
    assert.deepEqual(plan.steps, []);
    const notAfter = new x509.X509Certificate(webhook.cert).notAfter.getTime();
    // a third of the 90 days before notAfter, to the second
    assert.ok(Math.abs(plan.nextCheckAt - (notAfter - 30 * DAY)) < 2000, new Date(plan.nextCheckAt).toISOString());
  });

  test('renewal when less than a third of the validity remains, not before', () => {
    assert.deepEqual(planCertificates({ ...input, now: START + 59 * DAY }).steps, []);
    const plan = planCertificates({ ...input, now: START + 60 * DAY + 1000 });
    assert.deepEqual(kinds(plan.steps), ['issueLeaf:webhook', 'issueLeaf:control']);
    assert.match((plan.steps[0] as { reason: string }).reason, /less than a third/);
  });

  test('new SANs, another CA, a key of another certificate, a Secret of another type: reissue', () => {
    const renamed = { ...NAMES, webhook: serviceNames('airlock-webhook', 'airlock-system') };
    assert.deepEqual(kinds(planCertificates({ ...input, names: renamed }).steps), ['issueLeaf:webhook']);
    assert.deepEqual(kinds(planCertificates({ ...input, ca: caSecret(other), leaves: input.leaves, configurations: [] }).steps), ['issueLeaf:webhook', 'issueLeaf:control']);
    assert.deepEqual(kinds(planCertificates({ ...input, leaves: { webhook: tls({ cert: webhook.cert, key: control.key }, ca.cert), control: input.leaves.control } }).steps), ['issueLeaf:webhook']);
    const opaque = planCertificates({ ...input, leaves: { webhook: input.leaves.webhook, control: { type: 'Opaque', data: {} } } });
    assert.deepEqual(opaque.steps, [{ kind: 'issueLeaf', leaf: 'control', reason: 'the Secret is of type Opaque, not kubernetes.io/tls', recreate: true }]);
  });

  test('IPv6 SANs compare however they are spelled: no reissue loop', async () => {
    const names = { ...NAMES, control: serviceNames('airlock-operator', 'airlock-system', ['2001:db8:0:0:0:0:0:1']) };
    const leaf = await issueServingCertificate({ ca, names: names.control, now: START, validityMs: SETTINGS.leafValidityMs });
    assert.deepEqual(planCertificates({ ...input, names, leaves: { webhook: input.leaves.webhook, control: tls(leaf, ca.cert) } }).steps, []);
  });

  test('a stale ca.crt in a TLS Secret or a stale caBundle: update just that', () => {
    assert.deepEqual(kinds(planCertificates({ ...input, leaves: { webhook: tls(webhook, ''), control: input.leaves.control } }).steps), ['updateLeafBundle:webhook']);
    assert.deepEqual(kinds(planCertificates({ ...input, configurations: [config(ca.cert), { kind: 'validating', name: 'airlock-validate', caBundles: [other.cert] }] }).steps), ['patchCaBundle:airlock-validate']);
    assert.deepEqual(kinds(planCertificates({ ...input, configurations: [{ kind: 'mutating', name: 'airlock-inject', caBundles: [ca.cert, ''] }] }).steps), ['patchCaBundle:airlock-inject']);
  });

  test('CA rotation starts when a third of its life remains, or on request', () => {
    assert.deepEqual(kinds(planCertificates({ ...input, now: START + 2434 * DAY }).steps), ['issueCa:next']);
    assert.deepEqual(kinds(planCertificates({ ...input, now: START + 2400 * DAY }).steps).includes('issueCa:next'), false);
    const requested = planCertificates({ ...input, ca: caSecret(ca, {}, { [ROTATE_CA_ANNOTATION]: 'now' }) });
    assert.deepEqual(kinds(requested.steps), ['issueCa:next']);
  });

  test('during the overlap both CAs are trusted and the old one still signs; promotion waits for publication and time', () => {
    const during: PlanInput = { ...input, ca: caSecret(ca, { [CA_KEYS.nextCert]: other.cert, [CA_KEYS.nextKey]: other.key }) };
    const first = planCertificates(during);
    const both = ca.cert + other.cert;
    assert.equal(first.bundle, both);
    assert.deepEqual(first.signer, ca);
    assert.deepEqual(kinds(first.steps), ['updateLeafBundle:webhook', 'updateLeafBundle:control', 'patchCaBundle:airlock-inject', 'patchCaBundle:airlock-validate']);
    const published: PlanInput = { ...during, leaves: { webhook: tls(webhook, both), control: tls(control, both) }, configurations: [config(both), { kind: 'validating', name: 'airlock-validate', caBundles: [both] }] };
    // the next CA was issued at START: the overlap ends at START + 1h, input.now is already past it
    assert.deepEqual(kinds(planCertificates({ ...published, now: START + HOUR / 2 }).steps), []);
    assert.deepEqual(kinds(planCertificates({ ...during, leaves: published.leaves }).steps), ['patchCaBundle:airlock-inject', 'patchCaBundle:airlock-validate'], 'not promoted while a configuration lacks the next CA');
    const promote = planCertificates(published).steps;
    assert.deepEqual(promote, [
      { kind: 'writeCa', data: { [CA_KEYS.cert]: other.cert, [CA_KEYS.key]: other.key, [CA_KEYS.previousCert]: ca.cert }, reason: 'the next CA has been trusted everywhere for the overlap: it signs from now on' },
    ]);
    // promoted: the leaves are reissued from the new CA, the old one stays trusted
    const promoted = planCertificates({ ...published, ca: caSecret(other, { [CA_KEYS.previousCert]: ca.cert }) });
    assert.equal(promoted.bundle, other.cert + ca.cert);
    assert.deepEqual(kinds(promoted.steps), ['issueLeaf:webhook', 'issueLeaf:control', 'patchCaBundle:airlock-inject', 'patchCaBundle:airlock-validate']);
  });

  test('the cross-certificate: carried over at promotion, served after each serving certificate, dropped when it no longer fits', async () => {
    const cross = await crossSign({ subject: other, issuer: ca, now: START });
    const both = ca.cert + other.cert;
    const published: PlanInput = {
      ...input,
      ca: caSecret(ca, { [CA_KEYS.nextCert]: other.cert, [CA_KEYS.nextKey]: other.key, [CA_KEYS.nextCrossCert]: cross }),
      leaves: { webhook: tls(webhook, both), control: tls(control, both) },
      configurations: [config(both)],
    };
    const [promote] = planCertificates(published).steps;
    assert.ok(promote?.kind === 'writeCa');
    assert.equal(promote.data[CA_KEYS.crossCert], cross);
    // promoted, leaves reissued from the new CA without the chain: rewrite tls.crt with it
    const [w, c] = await Promise.all([
      issueServingCertificate({ ca: other, names: NAMES.webhook, now: START + HOUR, validityMs: SETTINGS.leafValidityMs }),
      issueServingCertificate({ ca: other, names: NAMES.control, now: START + HOUR, validityMs: SETTINGS.leafValidityMs }),
    ]);
    const after: PlanInput = { ...published, ca: caSecret(other, { [CA_KEYS.previousCert]: ca.cert, [CA_KEYS.crossCert]: cross }), leaves: { webhook: tls(w, other.cert + ca.cert), control: tls(c, other.cert + ca.cert) }, configurations: [config(other.cert + ca.cert)] };
    const plan = planCertificates(after);
    assert.equal(plan.chain, cross);
    assert.deepEqual(plan.steps, [
      { kind: 'updateLeafBundle', leaf: 'webhook', cert: w.cert + cross },
      { kind: 'updateLeafBundle', leaf: 'control', cert: c.cert + cross },
    ]);
    assert.deepEqual(planCertificates({ ...after, leaves: { webhook: tls({ cert: w.cert + cross, key: w.key }, other.cert + ca.cert), control: tls({ cert: c.cert + cross, key: c.key }, other.cert + ca.cert) } }).steps, []);
    // a cross-certificate of another CA is dropped
    const wrong = planCertificates({ ...after, ca: caSecret(other, { [CA_KEYS.previousCert]: ca.cert, [CA_KEYS.crossCert]: await crossSign({ subject: ca, issuer: other, now: START }) }) });
    assert.deepEqual(wrong.steps.map((s) => (s.kind === 'writeCa' ? Object.keys(s.data).sort() : s.kind)), [[CA_KEYS.cert, CA_KEYS.key, CA_KEYS.previousCert].sort()]);
  });

  test('an expired active CA with a valid next one: the next one takes over at once; both expired: a new CA', async () => {
    const late = await issueCa({ now: START + 3000 * DAY });
    const plan = planCertificates({ ...input, now: START + 3651 * DAY, ca: caSecret(ca, { [CA_KEYS.nextCert]: late.cert, [CA_KEYS.nextKey]: late.key }) });
    assert.deepEqual(plan.steps.map((s) => (s.kind === 'writeCa' ? s.data : s.kind)), [{ [CA_KEYS.cert]: late.cert, [CA_KEYS.key]: late.key }]);
    const both = planCertificates({ ...input, now: START + 3651 * DAY, ca: caSecret(ca, { [CA_KEYS.nextCert]: other.cert, [CA_KEYS.nextKey]: other.key }) });
    assert.deepEqual(kinds(both.steps), ['issueCa:active']);
  });
});

describe('caBundlePatch', () => {
  test('only the webhooks whose caBundle differs, guarded by resourceVersion and names', () => {
    const bundle = 'PEM';
    const encoded = Buffer.from(bundle).toString('base64');
    assert.deepEqual(caBundlePatch({ resourceVersion: '7', webhooks: [{ name: 'a', caBundle: encoded }, { name: 'b' }] }, bundle), [
      { op: 'test', path: '/metadata/resourceVersion', value: '7' },
      { op: 'test', path: '/webhooks/1/name', value: 'b' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: encoded },
    ]);
    assert.deepEqual(caBundlePatch({ resourceVersion: '7', webhooks: [{ name: 'a', caBundle: encoded }] }, bundle), []);
  });
});

/**
 * A cluster in memory driven by the plan on a fake clock for years: after every single write,
 * whatever the webhook serves chains to every caBundle the API server holds.
 */
describe('certificate lifecycle on a fake clock', () => {
  interface Store {
    ca: SecretContents | undefined;
    leaves: Record<LeafName, SecretContents | undefined>;
    configurations: ConfigurationContents[];
  }

  /** whether the served chain (leaf, then intermediates) leads to a root of the bundle, all valid at `at` */
  async function chains(served: string, bundle: string, at: number): Promise<boolean> {
    const [leaf, ...intermediates] = x509.PemConverter.decode(served).map((raw) => new x509.X509Certificate(raw));
    const roots = x509.PemConverter.decode(bundle).map((raw) => new x509.X509Certificate(raw));
    const date = new Date(at);
    const issues = async (cert: x509.X509Certificate, by: x509.X509Certificate): Promise<boolean> => by.subject === cert.issuer && (await cert.verify({ publicKey: by.publicKey, date }));
    if (leaf === undefined) return false;
    for (const root of roots) {
      if (await issues(leaf, root)) return true;
      for (const middle of intermediates) if ((await issues(leaf, middle)) && (await issues(middle, root))) return true;
    }
    return false;
  }

  async function settle(store: Store, clock: FakeClock, settings: CertificateSettings, log: string[], clients: readonly string[]): Promise<number> {
    for (let round = 0; round < 10; round++) {
      const now = clock.now();
      const plan = planCertificates({ now, settings, ca: store.ca, leaves: store.leaves, names: NAMES, configurations: store.configurations });
      if (plan.steps.length === 0) return plan.nextCheckAt;
      for (const step of plan.steps) {
        log.push(step.kind === 'issueCa' ? `issueCa:${step.slot}` : step.kind === 'writeCa' ? `writeCa:${Object.keys(step.data).sort().join(',')}` : step.kind);
        if (step.kind === 'issueCa') {
          const issued = await issueCa({ now, validityMs: settings.caValidityMs });
          const current = store.ca?.data ?? {};
          const kept = Object.fromEntries(Object.entries(current).filter(([k]) => k === CA_KEYS.cert || k === CA_KEYS.key || k === CA_KEYS.crossCert || k === CA_KEYS.previousCert));
          store.ca = {
            data:
              step.slot === 'active'
                ? { [CA_KEYS.cert]: issued.cert, [CA_KEYS.key]: issued.key }
                : { ...kept, [CA_KEYS.nextCert]: issued.cert, [CA_KEYS.nextKey]: issued.key, [CA_KEYS.nextCrossCert]: await crossSign({ subject: issued, issuer: { cert: current[CA_KEYS.cert] ?? '', key: current[CA_KEYS.key] ?? '' }, now }) },
          };
        } else if (step.kind === 'writeCa') {
          store.ca = { data: step.data };
        } else if (step.kind === 'issueLeaf') {
          assert.ok(plan.signer);
          const issued = await issueServingCertificate({ ca: plan.signer, names: NAMES[step.leaf], now, validityMs: settings.leafValidityMs });
          store.leaves[step.leaf] = tls({ cert: issued.cert + plan.chain, key: issued.key }, plan.bundle);
        } else if (step.kind === 'updateLeafBundle') {
          const current = store.leaves[step.leaf];
          assert.ok(current);
          store.leaves[step.leaf] = { ...current, data: { ...current.data, [TLS_KEYS.cert]: step.cert, [TLS_KEYS.ca]: plan.bundle } };
        } else {
          store.configurations = store.configurations.map((c) => (c.name === step.configuration.name ? { ...c, caBundles: c.caBundles.map(() => plan.bundle) } : c));
        }
        const served = store.leaves.webhook?.data[TLS_KEYS.cert];
        if (served !== undefined) {
          for (const c of store.configurations) for (const b of c.caBundles) if (b !== '') assert.ok(await chains(served, b, now), `after ${step.kind} at ${new Date(now).toISOString()}: the webhook's certificate does not chain to the caBundle`);
          const controlCa = store.leaves.control?.data[TLS_KEYS.ca];
          const controlCert = store.leaves.control?.data[TLS_KEYS.cert];
          if (controlCa !== undefined && controlCert !== undefined) {
            assert.ok(await chains(controlCert, controlCa, now));
            // sidecars injected earlier keep the bundle of their day: it must still verify while one of its CAs is valid
            for (const client of clients) {
              const valid = x509.PemConverter.decode(client).some((raw) => new x509.X509Certificate(raw).notAfter.getTime() > now);
              if (valid) assert.ok(await chains(controlCert, client, now), `after ${step.kind} at ${new Date(now).toISOString()}: a sidecar injected earlier no longer verifies the control API`);
            }
          }
        }
      }
    }
    assert.fail('the plan did not settle in 10 rounds');
  }

  test('leaves renew with the same CA; the CA rotates with overlap, the old CA is dropped after it, earlier sidecars keep verifying', async () => {
    const clock = new FakeClock(START);
    const settings: CertificateSettings = { caValidityMs: 300 * DAY, leafValidityMs: 30 * DAY, caOverlapMs: 2 * DAY };
    const store: Store = { ca: undefined, leaves: { webhook: undefined, control: undefined }, configurations: [config('', 2), { kind: 'validating', name: 'airlock-validate', caBundles: [''] }] };
    const log: string[] = [];
    const cas = new Set<string>();
    const served = new Set<string>();
    let maxBundle = 0;
    /** the control trust bundle a sidecar injected at each check would carry */
    const clients: string[] = [];
    while (clock.now() < START + 500 * DAY) {
      const wake = await settle(store, clock, settings, log, clients);
      assert.ok(wake > clock.now(), 'the next check lies ahead');
      cas.add(store.ca?.data[CA_KEYS.cert] ?? '');
      served.add(store.leaves.webhook?.data[TLS_KEYS.cert] ?? '');
      const injected = store.leaves.control?.data[TLS_KEYS.ca];
      if (injected !== undefined && clients.at(-1) !== injected) clients.push(injected);
      maxBundle = Math.max(maxBundle, x509.PemConverter.decode(store.configurations[0]?.caBundles[0] ?? '').length);
      clock.advance(Math.min(wake - clock.now(), 10 * DAY));
    }
    // a CA lives 300 days and rotates with a third left: at 200 and 400 days → three CAs
    assert.equal(cas.size, 3, log.join('\n'));
    assert.equal(log.filter((l) => l === 'issueCa:next').length, 2);
    assert.equal(log.filter((l) => l === 'issueCa:active').length, 1);
    // leaves renew every 20 days (and once more after each promotion): about 25 + 2
    assert.ok(served.size >= 25 && served.size <= 30, String(served.size));
    assert.equal(maxBundle, 2, 'never more than the old and the new CA');
    assert.ok(log.includes(`writeCa:${[CA_KEYS.cert, CA_KEYS.key, CA_KEYS.crossCert, CA_KEYS.previousCert].sort().join(',')}`), `promotion with the cross-certificate\n${log.join('\n')}`);
    assert.ok(log.includes(`writeCa:${[CA_KEYS.cert, CA_KEYS.key, CA_KEYS.crossCert].sort().join(',')}`), 'the previous CA dropped, the cross-certificate kept');
    assert.ok(clients.length >= 4, 'sidecars of several CA generations were checked');
    assert.ok((store.leaves.control?.data[TLS_KEYS.cert] ?? '').split('BEGIN CERTIFICATE').length === 3, 'the control API serves its certificate and the cross-certificate');
  });
});
