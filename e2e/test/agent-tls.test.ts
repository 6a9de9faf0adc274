/**
 * The agent verifies the sidecar through Airlock's CA: the real operator (child process) on a real
 * kube-apiserver + etcd issues the cluster sidecar a TLS certificate for the postgres target's name
 * (`POST /v1/certificates`) and hands it the namespace's SSH host key, and keeps the ConfigMap
 * `airlock-ca` (ca.crt, ssh_known_hosts) in the agents' namespace. With only that ConfigMap's
 * files, `psql sslmode=verify-full` and `ssh -o StrictHostKeyChecking=yes` succeed through the
 * sidecar, and fail against another CA, another name or another key. Real PostgreSQL and sshd;
 * the pod stays Pending (no node): the control API only needs it to exist.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { freePort, startPostgres, type Postgres } from '../src/postgres.ts';
import { startSshd, type Sshd } from '../src/sshd.ts';
import { until as untilHolds } from '../src/wait.ts';
import { AirlockProcesses, type AirlockChild } from '../src/airlock-processes.ts';

const NS = 'tls-agents';
const AIRLOCK_NS = 'airlock-system';
const POD = 'agent-0';
const SA = 'robot';
/** the targets' name as the agent uses it (resolves to 127.0.0.1 here, so the sidecar reaches both) */
const TARGET = 'localhost';

let cp: ControlPlane;
let postgres: Postgres;
let sshd: Sshd;
let controlPort: number;
let pgListen: number;
let sshListen: number;
let token: string;
let dirs: { work: string; recordings: string; state: string; token: string; controlCa: string; agentCa: string; knownHosts: string };
const procs = new AirlockProcesses();
type Child = AirlockChild;
const run = (args: readonly string[]): Child => procs.run(args);

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const until = <T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 60_000): Promise<T> => untilHolds(what, read, accept, { timeoutMs, retryErrors: true, context: () => procs.tail() });

/** a CA of its own and a certificate for TARGET, signed by it (openssl) */
function otherCa(dir: string): string {
  const key = join(dir, 'other.key');
  const crt = join(dir, 'other.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=not-airlock'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return crt;
}

function psql(conninfo: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('psql', ['-X', '-At', conninfo, '-c', 'SELECT 40 + 2', '-c', '\\conninfo'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'unchecked', PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const conninfo = (extra: string): string => `host=${TARGET} hostaddr=127.0.0.1 port=${String(pgListen)} user=agent dbname=orders ${extra}`;

function ssh(knownHosts: string, alias: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      'ssh',
      ['-p', String(sshListen), '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', `HostKeyAlias=${alias}`, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `agent@127.0.0.1`, 'echo through-airlock'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** POST /v1/certificates with the pod's token */
function askCertificates(body: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: controlPort, path: '/v1/certificates', method: 'POST', ca: spawnSync('cat', [dirs.controlCa], { encoding: 'utf8' }).stdout, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  postgres = await startPostgres();
  for (const sql of ["CREATE ROLE agent LOGIN PASSWORD 'agent-secret-pw'", 'CREATE DATABASE orders OWNER agent']) assert.equal(postgres.psql(sql).code, 0);
  const work = mkdtempSync(join(tmpdir(), 'airlock-agent-tls-'));
  dirs = { work, recordings: join(work, 'recordings'), state: join(work, 'state'), token: join(work, 'token'), controlCa: join(work, 'control-ca.crt'), agentCa: join(work, 'ca.crt'), knownHosts: join(work, 'ssh_known_hosts') };
  controlPort = await freePort();
  pgListen = await freePort();
  sshListen = await freePort();
  sshd = await startSshd();

  cp = startControlPlane();
  await ok(['apply', '-f', join(ROOT, 'crds')]);
  await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
  await ok(['create', 'namespace', AIRLOCK_NS]);
  await ok(['create', 'namespace', NS]);
  await ok(['create', 'serviceaccount', SA, '-n', NS]);
  const agents = { podSelector: { matchLabels: { app: 'agent' } } };
  await ok(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: POD, namespace: NS, labels: { app: 'agent' }, annotations: { 'airlock.dev/injected': 'test' } },
      spec: { serviceAccountName: SA, automountServiceAccountToken: false, containers: [{ name: 'agent', image: 'example.invalid/agent:1' }] },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders-credentials', namespace: NS }, stringData: { username: 'agent', password: 'agent-secret-pw' } },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'orders', namespace: NS },
      spec: { protocol: 'postgres', target: { host: TARGET, port: postgres.port, database: 'orders', tls: { mode: 'disable' } }, credentialsSecretRef: { name: 'orders-credentials' }, agents, listenPort: pgListen, defaultAction: 'Allow' },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hosts-credentials', namespace: NS }, stringData: { username: sshd.user, privateKey: sshd.clientKey } },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'hosts', namespace: NS },
      spec: { protocol: 'ssh', target: { host: TARGET, port: sshd.port }, credentialsSecretRef: { name: 'hosts-credentials' }, ssh: { hostKeyFingerprints: [sshd.hostKeyFingerprint] }, agents, listenPort: sshListen, defaultAction: 'Allow' },
    },
  ] }));
  const uid = (await ok(['get', 'pod', POD, '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).trim();
  token = (await ok(['create', 'token', SA, '-n', NS, '--audience', 'airlock.dev', '--bound-object-kind', 'Pod', '--bound-object-name', POD, '--bound-object-uid', uid, '--duration', '2h'])).trim();
  writeFileSync(dirs.token, token);
  run(['operator', '--kubeconfig', cp.kubeconfig, '--metrics-addr', '127.0.0.1:0', '--control-addr', `127.0.0.1:${String(controlPort)}`, '--airlock-namespace', AIRLOCK_NS, '--cert-extra-names', '127.0.0.1', '--resync-period', '30s']);
  const controlCa = await until('the operator to issue its CA', async () => (await cp.kubectl(['get', 'secret', 'airlock-control-tls', '-n', AIRLOCK_NS, '-o', 'jsonpath={.data.ca\\.crt}'])).stdout.trim(), (v) => v !== '');
  writeFileSync(dirs.controlCa, Buffer.from(controlCa, 'base64'));
});

after(async () => {
  await procs.stopAll();
  (cp as ControlPlane | undefined)?.stop();
  await (postgres as Postgres | undefined)?.stop();
  await (sshd as Sshd | undefined)?.stop();
});

describe('agent-facing TLS and SSH host keys through the cluster sidecar', () => {
  test('the operator keeps ConfigMap airlock-ca in the agents\' namespace: the CA bundle and a known_hosts line for the ssh target', async () => {
    const data = await until(
      'ConfigMap airlock-ca',
      async () => JSON.parse((await ok(['get', 'configmap', 'airlock-ca', '-n', NS, '-o', 'json'])) || '{}') as { data?: Record<string, string> },
      (cm) => (cm.data?.['ca.crt'] ?? '') !== '' && (cm.data?.['ssh_known_hosts'] ?? '') !== '',
    );
    const ca = data.data?.['ca.crt'] ?? '';
    const knownHosts = data.data?.['ssh_known_hosts'] ?? '';
    const caSecret = Buffer.from((await ok(['get', 'secret', 'airlock-ca', '-n', AIRLOCK_NS, '-o', 'jsonpath={.data.ca\\.crt}'])).trim(), 'base64').toString();
    assert.equal(ca, caSecret, 'the bundle is Airlock\'s CA');
    const line = knownHosts.split('\n').find((l) => l !== '' && !l.startsWith('#')) ?? '';
    const [patterns = '', type, key] = line.split(' ');
    assert.ok(patterns.split(',').includes(`[localhost]:${String(sshd.port)}`), line);
    assert.ok(patterns.split(',').includes(`[localhost.${NS}.svc]:${String(sshd.port)}`), line);
    assert.equal(type, 'ecdsa-sha2-nistp256');
    assert.match(key ?? '', /^[A-Za-z0-9+/]+=*$/);
    writeFileSync(dirs.agentCa, ca);
    writeFileSync(dirs.knownHosts, knownHosts);
  });

  test('a new ssh connection in the namespace is pinned in the ConfigMap within seconds', async () => {
    await ok(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'jump', namespace: NS },
      spec: { protocol: 'ssh', target: { host: 'jump.ops', port: 22 }, credentialsSecretRef: { name: 'hosts-credentials' }, ssh: { hostKeyFingerprints: [sshd.hostKeyFingerprint] }, agents: { podSelector: { matchLabels: { app: 'someone-else' } } }, listenPort: 2299, defaultAction: 'Allow' },
    }));
    const started = Date.now();
    const knownHosts = await until('jump.ops in ssh_known_hosts', async () => (await ok(['get', 'configmap', 'airlock-ca', '-n', NS, '-o', 'jsonpath={.data.ssh_known_hosts}'])), (t) => t.includes('jump.ops.svc.cluster.local'), 15_000);
    assert.ok(Date.now() - started < 10_000);
    assert.match(knownHosts, /(^|,)jump\.ops(,| )/m);
    await ok(['delete', 'agentconnection', 'jump', '-n', NS]);
  });

  test('POST /v1/certificates: a leaf for the postgres target\'s names on the sidecar\'s key; refusals are 400', async () => {
    const { publicKey } = await import('node:crypto').then((c) => c.generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    // the control API answers 503 NotReady until the operator's caches have synced
    const good = await until('the control API ready', () => askCertificates(JSON.stringify({ tlsPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() })), (r) => r.status !== 503, 30_000);
    assert.equal(good.status, 200, JSON.stringify(good.body));
    const body = good.body as { tls?: { cert: string; dnsNames: string[]; notAfter: string; renewAt: string }; ssh?: { hostNames: string[]; publicKey: string } };
    assert.deepEqual(body.tls?.dnsNames, ['localhost', `localhost.${NS}`, `localhost.${NS}.svc`, `localhost.${NS}.svc.cluster.local`]);
    const { X509Certificate } = await import('node:crypto');
    const leaf = new X509Certificate(body.tls.cert);
    assert.ok(leaf.publicKey.equals(publicKey), 'issued on the key sent');
    assert.ok(leaf.verify(new X509Certificate(spawnSync('cat', [dirs.agentCa], { encoding: 'utf8' }).stdout).publicKey), 'signed by Airlock\'s CA');
    const life = Date.parse(body.tls.notAfter) - Date.now();
    assert.ok(life > 23 * 3_600_000 && life <= 24 * 3_600_000, `lifetime ${String(life)} ms`);
    assert.deepEqual(body.ssh?.hostNames.includes(`[localhost]:${String(sshd.port)}`), true);
    const bad = await askCertificates(JSON.stringify({ tlsPublicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' }));
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { code: string }).code, 'InvalidBody');
    const unknown = await askCertificates(JSON.stringify({ names: ['evil.example'] }));
    assert.equal(unknown.status, 400);
  });

  test('psql sslmode=verify-full with Airlock\'s CA reaches PostgreSQL through the sidecar; another CA or another name fails', async () => {
    const sidecar = run(['sidecar', '--cluster', '--control-url', `https://127.0.0.1:${String(controlPort)}`, '--control-ca-file', dirs.controlCa, '--token-file', dirs.token, '--recordings-dir', dirs.recordings, '--state-dir', dirs.state, '--health-addr', '127.0.0.1:0']);
    const health = await until('the health endpoint', () => Promise.resolve(/"health":"([0-9.]+:[0-9]+)"/.exec(sidecar.logs())?.[1]), (a) => a !== undefined, 30_000);
    await until('the sidecar ready', async () => (await fetch(`http://${health ?? ''}/healthz/ready`)).status, (s) => s === 200);
    assert.match(sidecar.logs(), /agent-facing certificates received/);

    const good = psql(conninfo(`sslmode=verify-full sslrootcert=${dirs.agentCa}`));
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^42$/m);
    assert.match(good.stdout, /SSL connection \(protocol: TLSv1\.[23]/);

    const other = psql(conninfo(`sslmode=verify-full sslrootcert=${otherCa(dirs.work)}`));
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /certificate verify failed/);

    const wrongName = spawnSync('psql', ['-X', '-At', `host=orders.example.com hostaddr=127.0.0.1 port=${String(pgListen)} user=agent dbname=orders sslmode=verify-full sslrootcert=${dirs.agentCa}`, '-c', 'SELECT 1'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'unchecked', PGCONNECT_TIMEOUT: '10' } });
    assert.notEqual(wrongName.status, 0);
    assert.match(wrongName.stderr, /does not match host name/);

    // without TLS the agent is still served, as before
    const plain = psql(conninfo('sslmode=disable'));
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^42$/m);

    // a large result over TLS arrives byte for byte as in clear (writes to the agent back-pressure the upstream)
    const big = (extra: string): string => {
      const r = spawnSync('psql', ['-X', '-At', conninfo(extra), '-c', "SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 60000) i"], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'unchecked', PGCONNECT_TIMEOUT: '10' }, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const overTls = big(`sslmode=verify-full sslrootcert=${dirs.agentCa}`);
    assert.equal(overTls.split('\n').length, 60001);
    assert.equal(overTls, big('sslmode=disable'));
  });

  test('ssh StrictHostKeyChecking=yes with the ConfigMap\'s known_hosts reaches sshd through the sidecar; another key fails', async () => {
    const good = await ssh(dirs.knownHosts, `[localhost]:${String(sshd.port)}`);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, 'through-airlock\n');

    const otherKnownHosts = join(dirs.work, 'other_known_hosts');
    writeFileSync(otherKnownHosts, `[localhost]:${String(sshd.port)} ${spawnSync('cat', [join(sshd.dir, 'host_ed25519.pub')], { encoding: 'utf8' }).stdout}`);
    const other = await ssh(otherKnownHosts, `[localhost]:${String(sshd.port)}`);
    assert.equal(other.code, 255);
    assert.match(other.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);

    const unknownName = await ssh(dirs.knownHosts, 'elsewhere.example');
    assert.equal(unknownName.code, 255);
    assert.match(unknownName.stderr, /Host key verification failed|No .* host key is known/);
  });
});
