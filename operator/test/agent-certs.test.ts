/**
 * What agents trust through the sidecar: the names of the agent-facing certificate, the SSH host
 * patterns and known_hosts, the per-namespace SSH host key, the leaf issued on a sidecar's public
 * key, the trust bundle, and the body of POST /v1/certificates. Plain values; real crypto.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, verify, X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import type { AgentConnection } from '@airlock/api';
import { agentCaBundle, agentServingNames, knownHostsText, renewAt, sshHostPatterns, targetNames } from '../src/certs/agent.ts';
import { CertificateError } from '../src/certs/errors.ts';
import { issueCa, issueCertificateForKey } from '../src/certs/issue.ts';
import { deriveSshHostKey } from '../src/certs/ssh-key.ts';
import { desiredTrust } from '../src/certs/trust.ts';
import { AgentCertificateService, parseCertificateAsk } from '../src/control/certificates.ts';
import { ControlFailure } from '../src/control/errors.ts';

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const HOUR = 3_600_000;
const SEED = new Uint8Array(32).fill(7);

function connection(name: string, protocol: 'postgres' | 'ssh', host: string, port: number, namespace = 'agents'): AgentConnection {
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'AgentConnection',
    metadata: { name, namespace },
    spec: { protocol, target: { host, port }, credentialsSecretRef: { name: `${name}-creds` }, agents: { serviceAccounts: ['robot'] } },
  } as unknown as AgentConnection;
}

describe('targetNames', () => {
  test('a bare Service name: every form in the connection\'s namespace', () => {
    assert.deepEqual(targetNames('orders-db', 'agents'), { dnsNames: ['orders-db', 'orders-db.agents', 'orders-db.agents.svc', 'orders-db.agents.svc.cluster.local'], ipAddresses: [] });
  });

  test('a Service of another namespace, in any form: its other forms, never the bare name', () => {
    const all = ['orders-db.databases', 'orders-db.databases.svc', 'orders-db.databases.svc.cluster.local'];
    for (const host of all) {
      const names = targetNames(host, 'agents');
      assert.equal(names.dnsNames[0], host);
      assert.deepEqual([...names.dnsNames].sort(), [...all].sort(), host);
    }
    assert.deepEqual(targetNames('orders-db.agents.svc', 'agents').dnsNames.includes('orders-db'), true);
  });

  test('an outside name stays alone (lower case, no trailing dot); an IP address is an IP SAN', () => {
    assert.deepEqual(targetNames('DB.Example.COM.', 'agents'), { dnsNames: ['db.example.com'], ipAddresses: [] });
    assert.deepEqual(targetNames('10.0.0.7', 'agents'), { dnsNames: [], ipAddresses: ['10.0.0.7'] });
    assert.deepEqual(targetNames('[fd00::1]', 'agents'), { dnsNames: [], ipAddresses: ['fd00::1'] });
    assert.deepEqual(targetNames('', 'agents'), { dnsNames: [], ipAddresses: [] });
  });

  test('never a name that is not a form of the host (fast-check)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9.-]{1,40}$/), fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), (host, ns) => {
        const { dnsNames } = targetNames(host, ns);
        const h = host.replace(/\.$/, '');
        if (dnsNames.length === 0) return h === '';
        if (dnsNames[0] !== h) return false;
        // every other name shares the host's first label
        const first = h.split('.')[0];
        return dnsNames.every((n) => n.split('.')[0] === first);
      }),
    );
  });
});

describe('agentServingNames and sshHostPatterns', () => {
  const granted = [
    connection('orders', 'postgres', 'orders-db', 5432),
    connection('billing', 'postgres', '10.1.2.3', 5432),
    connection('bastion', 'ssh', 'bastion.ops', 22),
    connection('builder', 'ssh', 'build.example.com', 2222),
  ];

  test('the TLS names are the postgres targets\' only', () => {
    assert.deepEqual(agentServingNames(granted), { dnsNames: ['orders-db', 'orders-db.agents', 'orders-db.agents.svc', 'orders-db.agents.svc.cluster.local'], ipAddresses: ['10.1.2.3'] });
    assert.deepEqual(agentServingNames([]), { dnsNames: [], ipAddresses: [] });
  });

  test('the SSH patterns are the ssh targets\', [name]:port off port 22, sorted', () => {
    assert.deepEqual(sshHostPatterns(granted), ['[build.example.com]:2222', 'bastion.ops', 'bastion.ops.svc', 'bastion.ops.svc.cluster.local']);
  });

  test('known_hosts: one line, or nothing without patterns', () => {
    assert.equal(knownHostsText([], 'ecdsa-sha2-nistp256 AAAA'), '');
    const text = knownHostsText(['a', '[b]:2222'], 'ecdsa-sha2-nistp256 AAAA');
    assert.match(text, /^# Airlock.*\na,\[b\]:2222 ecdsa-sha2-nistp256 AAAA\n$/);
  });
});

describe('deriveSshHostKey', () => {
  test('the same key for a namespace every time, another for another namespace or seed; the public key matches', () => {
    const a = deriveSshHostKey(SEED, 'agents');
    assert.deepEqual(deriveSshHostKey(SEED, 'agents'), a);
    assert.notEqual(deriveSshHostKey(SEED, 'other').publicKey, a.publicKey);
    assert.notEqual(deriveSshHostKey(new Uint8Array(32).fill(8), 'agents').publicKey, a.publicKey);
    assert.match(a.privateKey, /^-----BEGIN EC PRIVATE KEY-----\n/);
    // the OpenSSH public key is the private key's: decode the blob's point and verify a signature
    const [type, b64] = a.publicKey.split(' ');
    assert.equal(type, 'ecdsa-sha2-nistp256');
    const blob = Buffer.from(b64 ?? '', 'base64');
    const point = blob.subarray(blob.length - 65);
    assert.equal(blob.readUInt32BE(blob.length - 69), 65);
    const jwk = { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') };
    const signature = sign('sha256', Buffer.from('hello'), a.privateKey);
    assert.ok(verify('sha256', Buffer.from('hello'), createPublicKey({ key: jwk, format: 'jwk' }), signature));
  });

  test('a short seed or an empty namespace is refused with a code', () => {
    assert.throws(() => deriveSshHostKey(new Uint8Array(16), 'agents'), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidKey');
    assert.throws(() => deriveSshHostKey(SEED, ''), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidName');
  });
});

describe('issueCertificateForKey', () => {
  test('a leaf on the given key, with the SANs, serverAuth, signed by the CA, never outliving it', async () => {
    const ca = await issueCa({ now: NOW });
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const issued = await issueCertificateForKey({ ca, publicKeyPem: pem, names: { dnsNames: ['orders-db', 'orders-db.agents'], ipAddresses: ['10.1.2.3'] }, now: NOW, validityMs: 24 * HOUR });
    const leaf = new X509Certificate(issued.cert);
    assert.ok(leaf.publicKey.equals(publicKey));
    assert.ok(leaf.verify(new X509Certificate(ca.cert).publicKey));
    assert.equal(leaf.subjectAltName, 'DNS:orders-db, DNS:orders-db.agents, IP Address:10.1.2.3');
    assert.equal(issued.notAfter, NOW + 24 * HOUR);
    assert.equal(Date.parse(leaf.validTo), NOW + 24 * HOUR);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkHost('orders-db.agents') !== undefined);
    const short = await issueCa({ now: NOW, validityMs: HOUR });
    const capped = await issueCertificateForKey({ ca: short, publicKeyPem: pem, names: { dnsNames: ['x'], ipAddresses: [] }, now: NOW, validityMs: 24 * HOUR });
    assert.equal(capped.notAfter, NOW + HOUR);
  });

  test('a key that is not ECDSA P-256, or no names, is refused with a code', async () => {
    const ca = await issueCa({ now: NOW });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await assert.rejects(issueCertificateForKey({ ca, publicKeyPem: rsa, names: { dnsNames: ['x'], ipAddresses: [] }, now: NOW, validityMs: HOUR }), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidKey');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await assert.rejects(issueCertificateForKey({ ca, publicKeyPem: ec, names: { dnsNames: [], ipAddresses: [] }, now: NOW, validityMs: HOUR }), (err: unknown) => err instanceof CertificateError && err.code === 'InvalidName');
  });
});

describe('trust bundle and ConfigMap data', () => {
  test('the active, next and previous CA, in that order; nothing else', () => {
    assert.equal(agentCaBundle({ 'ca.crt': 'A\n', 'ca.key': 'K', 'next.crt': 'B', 'previous.crt': 'C\n', 'cross.crt': 'X' }), 'A\nB\nC\n');
    assert.equal(agentCaBundle({}), '');
  });

  test('the namespace\'s ssh targets only, with the namespace\'s key', () => {
    const data = desiredTrust('agents', [connection('bastion', 'ssh', 'bastion', 22), connection('far', 'ssh', 'far', 22, 'other')], { bundle: 'CA\n', seed: SEED });
    assert.equal(data['ca.crt'], 'CA\n');
    assert.match(data['ssh_known_hosts'] ?? '', new RegExp(`^bastion,bastion\\.agents,bastion\\.agents\\.svc,bastion\\.agents\\.svc\\.cluster\\.local ${deriveSshHostKey(SEED, 'agents').publicKey.replace(/[+/]/g, '\\$&')}$`, 'm'));
    assert.ok(!(data['ssh_known_hosts'] ?? '').includes('far'));
    assert.equal(desiredTrust('agents', [connection('orders', 'postgres', 'db', 5432)], { bundle: 'CA\n', seed: undefined })['ssh_known_hosts'], '');
  });

  test('renewal at two thirds of the life', () => {
    assert.equal(renewAt(NOW, NOW + 24 * HOUR), NOW + 16 * HOUR);
  });
});

describe('POST /v1/certificates', () => {
  test('the body: tlsPublicKey only, a PEM public key', () => {
    assert.deepEqual(parseCertificateAsk({}), {});
    assert.deepEqual(parseCertificateAsk({ tlsPublicKey: '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n' }), { tlsPublicKey: '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n' });
    for (const bad of [null, [], 'x', { tlsPublicKey: 5 }, { tlsPublicKey: 'not pem' }, { dnsNames: ['evil.example'] }, { tlsPublicKey: `-----BEGIN PUBLIC KEY-----${'A'.repeat(5000)}` }]) {
      assert.throws(() => parseCertificateAsk(bad), (err: unknown) => err instanceof ControlFailure && err.code === 'InvalidBody', JSON.stringify(bad).slice(0, 60));
    }
  });

  test('issues for the granted connections only; SSH for ssh targets; Unavailable without a CA', async () => {
    const ca = await issueCa({ now: NOW });
    const source = { agentSigner: () => ca, agentCaBundle: () => ca.cert, sshSeed: () => SEED };
    const service = new AgentCertificateService({ source, clock: { now: () => NOW, setTimer: () => () => undefined } });
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const pod = { namespace: 'agents', name: 'agent-0', uid: 'u', serviceAccount: 'robot' };
    const both = await service.issue(pod, [connection('orders', 'postgres', 'orders-db', 5432), connection('bastion', 'ssh', 'bastion', 22)], { tlsPublicKey: pem });
    assert.deepEqual(both.tls?.dnsNames, ['orders-db', 'orders-db.agents', 'orders-db.agents.svc', 'orders-db.agents.svc.cluster.local']);
    assert.equal(both.tls.ca, ca.cert);
    assert.equal(both.tls.renewAt, new Date(NOW + 16 * HOUR).toISOString());
    assert.equal(both.ssh?.publicKey, deriveSshHostKey(SEED, 'agents').publicKey);
    assert.deepEqual(both.ssh.hostNames, ['bastion', 'bastion.agents', 'bastion.agents.svc', 'bastion.agents.svc.cluster.local']);
    const sshOnly = await service.issue(pod, [connection('bastion', 'ssh', 'bastion', 22)], { tlsPublicKey: pem });
    assert.equal(sshOnly.tls, undefined);
    const noKey = await service.issue(pod, [connection('orders', 'postgres', 'orders-db', 5432)], {});
    assert.deepEqual(noKey, {});
    const without = new AgentCertificateService({ source: { ...source, agentSigner: () => undefined }, clock: { now: () => NOW, setTimer: () => () => undefined } });
    await assert.rejects(without.issue(pod, [connection('orders', 'postgres', 'orders-db', 5432)], { tlsPublicKey: pem }), (err: unknown) => err instanceof ControlFailure && err.code === 'Unavailable');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await assert.rejects(service.issue(pod, [connection('orders', 'postgres', 'orders-db', 5432)], { tlsPublicKey: rsa }), (err: unknown) => err instanceof ControlFailure && err.code === 'InvalidBody');
  });

  test('never a name of a Service in Airlock\'s namespace: the same CA vouches for the webhook and the control API', async () => {
    const ca = await issueCa({ now: NOW });
    const source = { agentSigner: () => ca, agentCaBundle: () => ca.cert, sshSeed: () => SEED };
    const service = new AgentCertificateService({ source, clock: { now: () => NOW, setTimer: () => () => undefined }, reservedNamespace: 'airlock-system' });
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const pod = { namespace: 'agents', name: 'agent-0', uid: 'u', serviceAccount: 'robot' };
    const webhook = await service.issue(pod, [connection('sneaky', 'postgres', 'airlock-webhook.airlock-system.svc', 443)], { tlsPublicKey: pem });
    assert.equal(webhook.tls, undefined, 'a certificate was issued for a name of Airlock\'s namespace');
    const mixed = await service.issue(pod, [connection('sneaky', 'postgres', 'airlock-operator.airlock-system.svc.cluster.local', 8443), connection('orders', 'postgres', 'orders-db', 5432)], { tlsPublicKey: pem });
    assert.ok(mixed.tls !== undefined);
    assert.ok(mixed.tls.dnsNames.every((n) => !n.includes('airlock-system')), mixed.tls.dnsNames.join(' '));
    const cert = new X509Certificate(mixed.tls.cert);
    assert.doesNotMatch(cert.subjectAltName ?? '', /airlock-system/);
  });
});
