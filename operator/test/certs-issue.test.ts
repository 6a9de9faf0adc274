import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CertificateError } from '../src/certs/errors.ts';
import { DEFAULT_CA_VALIDITY_MS, DEFAULT_LEAF_VALIDITY_MS, crossSign, issueCa, issueServingCertificate, serviceNames } from '../src/certs/issue.ts';

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const HOUR = 3_600_000;
const NAMES = serviceNames('airlock-webhook', 'airlock-system', ['127.0.0.1', 'localhost']);

function sans(cert: x509.X509Certificate): string[] {
  return (cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? []).map((n) => `${n.type}:${n.value}`);
}

async function chainOk(leaf: x509.X509Certificate, roots: readonly x509.X509Certificate[], date: Date): Promise<boolean> {
  for (const root of roots) {
    if (leaf.issuer !== root.subject) continue;
    if (await leaf.verify({ publicKey: root.publicKey, date })) return true;
  }
  return false;
}

describe('serviceNames', () => {
  test('the four Service names, then the extras by kind, without duplicates', () => {
    assert.deepEqual(serviceNames('svc', 'ns', ['127.0.0.1', 'svc.ns', 'localhost', '::1', '127.0.0.1']), {
      dnsNames: ['svc', 'svc.ns', 'svc.ns.svc', 'svc.ns.svc.cluster.local', 'localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
  });

  test('empty names are refused with a code', () => {
    assert.throws(() => serviceNames('', 'ns'), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidName');
    assert.throws(() => serviceNames('svc', 'ns', ['']), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidName');
  });
});

describe('issueCa', () => {
  test('a self-signed ECDSA P-256 CA named airlock-ca, valid 10 years, CA:TRUE and certSign, both critical', async () => {
    const ca = await issueCa({ now: NOW });
    const cert = new x509.X509Certificate(ca.cert);
    assert.equal(cert.subject, 'CN=airlock-ca');
    assert.equal(cert.issuer, 'CN=airlock-ca');
    assert.ok(await cert.isSelfSigned());
    assert.equal(cert.notAfter.getTime(), NOW + DEFAULT_CA_VALIDITY_MS);
    assert.ok(cert.notBefore.getTime() <= NOW && cert.notBefore.getTime() >= NOW - 60_000);
    const basic = cert.getExtension(x509.BasicConstraintsExtension);
    assert.ok(basic?.ca === true && basic.critical);
    const usage = cert.getExtension(x509.KeyUsagesExtension);
    assert.ok(usage !== null && usage.critical && (usage.usages & x509.KeyUsageFlags.keyCertSign) !== 0);
    assert.deepEqual(cert.publicKey.algorithm, { name: 'ECDSA', namedCurve: 'P-256' });
    assert.match(ca.key, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  test('a validity under a second is refused', async () => {
    await assert.rejects(issueCa({ now: NOW, validityMs: 10 }), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidValidity');
  });
});

describe('issueServingCertificate', () => {
  test('chains to its CA, carries exactly the Service names and 127.0.0.1, serverAuth, valid 2160h by default', async () => {
    const ca = await issueCa({ now: NOW });
    const leaf = await issueServingCertificate({ ca, names: NAMES, now: NOW });
    const cert = new x509.X509Certificate(leaf.cert);
    const root = new x509.X509Certificate(ca.cert);
    assert.ok(await chainOk(cert, [root], new Date(NOW)));
    const chain = await new x509.X509ChainBuilder({ certificates: [root] }).build(cert);
    assert.deepEqual([...chain].map((c) => c.subject), ['CN=airlock-webhook.airlock-system.svc', 'CN=airlock-ca']);
    assert.deepEqual(sans(cert), [
      'dns:airlock-webhook',
      'dns:airlock-webhook.airlock-system',
      'dns:airlock-webhook.airlock-system.svc',
      'dns:airlock-webhook.airlock-system.svc.cluster.local',
      'dns:localhost',
      'ip:127.0.0.1',
    ]);
    assert.equal(cert.notAfter.getTime(), NOW + DEFAULT_LEAF_VALIDITY_MS);
    assert.equal(cert.getExtension(x509.BasicConstraintsExtension)?.ca, false);
    assert.deepEqual([...(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])], [x509.ExtendedKeyUsage.serverAuth]);
    assert.equal(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    assert.ok(!(await chainOk(cert, [root], new Date(NOW + DEFAULT_LEAF_VALIDITY_MS + 1000))), 'expired after its validity');
  });

  test('does not chain to another CA of the same name', async () => {
    const [ca, other] = await Promise.all([issueCa({ now: NOW }), issueCa({ now: NOW })]);
    const leaf = new x509.X509Certificate((await issueServingCertificate({ ca, names: NAMES, now: NOW })).cert);
    assert.ok(!(await chainOk(leaf, [new x509.X509Certificate(other.cert)], new Date(NOW))));
  });

  test('the validity is configurable and never outlives the CA', async () => {
    const ca = await issueCa({ now: NOW, validityMs: 48 * HOUR });
    const short = new x509.X509Certificate((await issueServingCertificate({ ca, names: NAMES, now: NOW, validityMs: 2 * HOUR })).cert);
    assert.equal(short.notAfter.getTime(), NOW + 2 * HOUR);
    const capped = new x509.X509Certificate((await issueServingCertificate({ ca, names: NAMES, now: NOW + HOUR, validityMs: 100 * HOUR })).cert);
    assert.equal(capped.notAfter.getTime(), NOW + 48 * HOUR);
  });

  test('a CA key that is not PEM is refused with a code', async () => {
    const ca = await issueCa({ now: NOW });
    await assert.rejects(issueServingCertificate({ ca: { cert: ca.cert, key: 'nope' }, names: NAMES, now: NOW }), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidKey');
    await assert.rejects(issueServingCertificate({ ca: { cert: 'nope', key: ca.key }, names: NAMES, now: NOW }), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidCertificate');
  });

  test('a TLS client that trusts only the CA connects by the Service name and by 127.0.0.1', async () => {
    const now = Date.now();
    const ca = await issueCa({ now });
    const leaf = await issueServingCertificate({ ca, names: NAMES, now });
    const server = createServer({ cert: leaf.cert, key: leaf.key }, (socket) => socket.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      for (const servername of ['airlock-webhook.airlock-system.svc', undefined]) {
        const socket = connect({ host: '127.0.0.1', port, ca: ca.cert, ...(servername === undefined ? {} : { servername }) });
        await once(socket, 'secureConnect');
        assert.ok(socket.authorized);
        socket.destroy();
      }
      const wrong = connect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'other.airlock-system.svc' });
      const [err] = (await once(wrong, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      server.close();
    }
  });
});

describe('crossSign', () => {
  test('a client trusting only the old CA verifies a new-CA certificate through the cross-certificate; it expires with the old CA', async () => {
    const oldCa = await issueCa({ now: NOW, validityMs: 100 * HOUR });
    const newCa = await issueCa({ now: NOW + HOUR });
    const cross = new x509.X509Certificate(await crossSign({ subject: newCa, issuer: oldCa, now: NOW + HOUR }));
    const leaf = new x509.X509Certificate((await issueServingCertificate({ ca: newCa, names: NAMES, now: NOW + HOUR })).cert);
    const oldRoot = new x509.X509Certificate(oldCa.cert);
    const newRoot = new x509.X509Certificate(newCa.cert);
    const at = new Date(NOW + 2 * HOUR);
    assert.ok(!(await chainOk(leaf, [oldRoot], at)), 'not without the cross-certificate');
    assert.ok(await chainOk(leaf, [cross], at), 'the leaf chains to the cross-certificate (same name and key as the new CA)');
    assert.ok(await chainOk(cross, [oldRoot], at), 'which the old CA signed');
    assert.ok(!(await chainOk(cross, [newRoot], at)));
    assert.equal(cross.subject, newRoot.subject);
    assert.equal(cross.getExtension(x509.BasicConstraintsExtension)?.ca, true);
    assert.equal(cross.notAfter.getTime(), NOW + 100 * HOUR);
  });
});
